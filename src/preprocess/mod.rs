//! Image preprocessing identical to transformers' `CLIPImageProcessor` on its PIL path (the
//! original OpenAI preprocessing): to RGB, resize the shortest edge with Pillow's bicubic
//! filter on 8-bit pixels, center crop, rescale by 1/255, normalize with CLIP's mean and std.
//!
//! Two entry points share every step after decoding: [`decode`] for encoded files (PNG, JPEG,
//! WebP, GIF's first frame, BMP) and [`from_rgba`] for the raw RGBA pixels a browser canvas gives.

#[cfg(not(target_family = "wasm"))]
mod jpeg;
mod resample;

pub use resample::Rgb8;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder};

use crate::Error;
use crate::config::{PreprocessConfig, ResizeTarget};

/// Largest accepted side, and pixel count, of a decoded image: bigger files are refused with a
/// message rather than exhausting memory (a 16k × 16k RGB image is already 768 MB).
pub const MAX_SIDE: usize = 16_384;
pub const MAX_PIXELS: usize = 100_000_000;

/// Normalized pixels, channel-first `[3, height, width]`, ready for the vision tower.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// Decode an image file's bytes to 8-bit RGB the way transformers' `convert_to_rgb` sees it.
///
/// * Alpha (RGBA, gray + alpha, palette transparency) is composited onto white with Pillow's
///   `alpha_composite` arithmetic, as transformers does.
/// * Grayscale is replicated into R, G and B.
/// * 16-bit samples keep their high byte, as Pillow reads 16-bit RGB. (Pillow converts 16-bit
///   *grayscale* by clamping at 255, which turns almost every pixel white; webclip takes the
///   high byte there too.)
/// * GIFs give their first frame. EXIF orientation is not applied, as in transformers (see
///   [`decode_upright`] for that).
/// * JPEG natively goes through libjpeg-turbo's arithmetic, as Pillow's does (see `jpeg.rs`).
pub fn decode(bytes: &[u8]) -> Result<Rgb8, Error> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(e.to_string()))?;
    if reader.format().is_none() {
        return Err(Error::Image("unrecognised image format (supported: PNG, JPEG, WebP, GIF, BMP)".into()));
    }
    // Natively, JPEGs take libjpeg-turbo's path so they decode to Pillow's exact pixels.
    #[cfg(not(target_family = "wasm"))]
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        return jpeg::decode(bytes);
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE as u32);
    limits.max_image_height = Some(MAX_SIDE as u32);
    limits.max_alloc = Some((MAX_PIXELS * 8) as u64);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| Error::Image(decode_message(e)))?;
    to_rgb(img)
}

/// [`decode`], then turned upright as the file's EXIF orientation tag says: the image as a
/// browser or photo viewer shows it. transformers does not do this (Pillow's `Image.open`
/// ignores the tag, so a phone photo reaches CLIP on its side); it equals running transformers
/// on `ImageOps.exif_transpose(image)`.
pub fn decode_upright(bytes: &[u8]) -> Result<Rgb8, Error> {
    let img = decode(bytes)?;
    let orientation = exif_orientation(bytes);
    if orientation == Orientation::NoTransforms {
        return Ok(img);
    }
    let (width, height) = (img.width as u32, img.height as u32);
    let buffer = image::RgbImage::from_raw(width, height, img.data)
        .ok_or_else(|| Error::Image("decoded pixels do not fill the image".into()))?;
    let mut img = DynamicImage::ImageRgb8(buffer);
    img.apply_orientation(orientation);
    let (width, height) = (img.width() as usize, img.height() as usize);
    Ok(Rgb8 { width, height, data: img.into_rgb8().into_raw() })
}

/// The orientation a file's EXIF data asks for; none when it has no (readable) EXIF.
fn exif_orientation(bytes: &[u8]) -> Orientation {
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_decoder().ok())
        .and_then(|mut d| d.orientation().ok())
        .unwrap_or(Orientation::NoTransforms)
}

fn decode_message(e: image::ImageError) -> String {
    match e {
        image::ImageError::Limits(_) => {
            format!("the image is too large (at most {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all)")
        }
        image::ImageError::Unsupported(u) => format!("unsupported image: {u}"),
        other => format!("cannot decode the image: {other}"),
    }
}

fn to_rgb(img: DynamicImage) -> Result<Rgb8, Error> {
    let (width, height) = (img.width() as usize, img.height() as usize);
    check_size(width, height)?;
    let mut data = Vec::with_capacity(width * height * 3);
    match img {
        DynamicImage::ImageRgb8(b) => data = b.into_raw(),
        DynamicImage::ImageLuma8(b) => b.into_raw().iter().for_each(|&l| data.extend([l, l, l])),
        DynamicImage::ImageRgba8(b) => b.chunks_exact(4).for_each(|p| data.extend(over_white(p[0], p[1], p[2], p[3]))),
        DynamicImage::ImageLumaA8(b) => b.chunks_exact(2).for_each(|p| data.extend(over_white(p[0], p[0], p[0], p[1]))),
        DynamicImage::ImageRgb16(b) => data.extend(b.iter().map(|&v| (v >> 8) as u8)),
        DynamicImage::ImageLuma16(b) => b.iter().for_each(|&l| data.extend([(l >> 8) as u8; 3])),
        DynamicImage::ImageRgba16(b) => b.chunks_exact(4).for_each(|p| {
            let [r, g, b, a] = [p[0], p[1], p[2], p[3]].map(|v| (v >> 8) as u8);
            data.extend(over_white(r, g, b, a))
        }),
        DynamicImage::ImageLumaA16(b) => b.chunks_exact(2).for_each(|p| {
            let (l, a) = ((p[0] >> 8) as u8, (p[1] >> 8) as u8);
            data.extend(over_white(l, l, l, a))
        }),
        other => data = other.to_rgb8().into_raw(),
    }
    Ok(Rgb8 { width, height, data })
}

fn check_size(width: usize, height: usize) -> Result<(), Error> {
    if width == 0 || height == 0 {
        return Err(Error::Image(format!("the image is empty ({width}×{height})")));
    }
    if width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS {
        return Err(Error::Image(format!(
            "the image is {width}×{height}; at most {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all are accepted"
        )));
    }
    Ok(())
}

/// One pixel composited onto opaque white, with Pillow's `alpha_composite` integer arithmetic
/// (7 extra bits of precision, divisions by 255 rounded by shifts).
fn over_white(r: u8, g: u8, b: u8, a: u8) -> [u8; 3] {
    const PRECISION_BITS: u32 = 7;
    if a == 0 {
        return [255; 3];
    }
    let shift_div255 = |v: u32| ((v >> 8) + v) >> 8;
    let a = u32::from(a);
    let blend = 255 * (255 - a); // dst alpha is 255
    let outa255 = a * 255 + blend;
    let coef1 = a * 255 * 255 * (1 << PRECISION_BITS) / outa255;
    let coef2 = 255 * (1 << PRECISION_BITS) - coef1;
    let mix =
        |s: u8| (shift_div255(u32::from(s) * coef1 + 255 * coef2 + (0x80 << PRECISION_BITS)) >> PRECISION_BITS) as u8;
    [mix(r), mix(g), mix(b)]
}

/// Raw RGBA pixels (a canvas's `ImageData`) to RGB, compositing alpha onto white as transformers
/// does for RGBA images.
pub fn from_rgba(width: usize, height: usize, rgba: &[u8]) -> Result<Rgb8, Error> {
    check_size(width, height)?;
    if rgba.len() != width * height * 4 {
        return Err(Error::Image(format!(
            "{} bytes of RGBA data do not make a {width}×{height} image ({} expected)",
            rgba.len(),
            width * height * 4
        )));
    }
    let data = rgba.chunks_exact(4).flat_map(|p| over_white(p[0], p[1], p[2], p[3])).collect();
    Ok(Rgb8 { width, height, data })
}

/// The size transformers resizes an image of `height × width` to.
pub fn resized_size(target: ResizeTarget, height: usize, width: usize) -> (usize, usize) {
    match target {
        ResizeTarget::None => (height, width),
        ResizeTarget::Exact { height, width } => (height, width),
        ResizeTarget::ShortestEdge(size) => {
            // get_resize_output_image_size: the long side is int(size * long / short), in f64.
            let (short, long) = if width <= height { (width, height) } else { (height, width) };
            let new_long = (size as f64 * long as f64 / short as f64) as usize;
            if width <= height { (new_long, size) } else { (size, new_long) }
        }
    }
}

/// Resize and center crop to 8-bit RGB, the last integer stage (what Pillow would hand back).
pub fn resize_and_crop(img: &Rgb8, config: &PreprocessConfig) -> Rgb8 {
    let (rh, rw) = resized_size(config.resize, img.height, img.width);
    let (ch, cw) = config.crop.unwrap_or((rh, rw));
    // transformers' center_crop: top = (h - ch) // 2 (floor), zero-padded where the crop
    // reaches outside the image.
    let top = (rh as i64 - ch as i64).div_euclid(2);
    let left = (rw as i64 - cw as i64).div_euclid(2);
    let (y0, y1) = (top.max(0) as usize, ((top + ch as i64).min(rh as i64)) as usize);
    let (x0, x1) = (left.max(0) as usize, ((left + cw as i64).min(rw as i64)) as usize);
    let inner = resample::resize_window(img, rw, rh, x0, y0, x1 - x0, y1 - y0);
    if (x1 - x0, y1 - y0) == (cw, ch) {
        return inner;
    }
    // Place the visible part where the zero padding puts it (ceil of half the shortfall).
    let pad_top = (ch.saturating_sub(rh)).div_ceil(2);
    let pad_left = (cw.saturating_sub(rw)).div_ceil(2);
    let mut data = vec![0u8; ch * cw * 3];
    for y in 0..inner.height {
        let dst = ((pad_top + y) * cw + pad_left) * 3;
        data[dst..dst + inner.width * 3].copy_from_slice(&inner.data[y * inner.width * 3..(y + 1) * inner.width * 3]);
    }
    Rgb8 { width: cw, height: ch, data }
}

/// Rescale and normalize to channel-first f32, with transformers' exact arithmetic:
/// `float32(float64(v) * rescale_factor)`, then `(x - mean) / std` in float32.
pub fn normalize(img: &Rgb8, config: &PreprocessConfig) -> Pixels {
    let plane = img.width * img.height;
    let mut data = vec![0f32; plane * 3];
    for (i, p) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            let v = match config.rescale_factor {
                Some(f) => (f64::from(p[c]) * f) as f32,
                None => f32::from(p[c]),
            };
            data[c * plane + i] = if config.normalize { (v - config.mean[c]) / config.std[c] } else { v };
        }
    }
    Pixels { height: img.height, width: img.width, data }
}

/// The whole pipeline after decoding.
pub fn preprocess(img: &Rgb8, config: &PreprocessConfig) -> Pixels {
    normalize(&resize_and_crop(img, config), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_and_transparent_pixels() {
        for v in [0u8, 1, 77, 128, 254, 255] {
            assert_eq!(over_white(v, v, v, 255), [v; 3]);
        }
        assert_eq!(over_white(0, 0, 0, 0), [255; 3]);
        assert_eq!(over_white(0, 0, 0, 128)[0], 127);
    }

    #[test]
    fn resized_sizes_floor_the_long_side() {
        assert_eq!(resized_size(ResizeTarget::ShortestEdge(224), 451, 300), (336, 224));
        assert_eq!(resized_size(ResizeTarget::ShortestEdge(224), 1, 1000), (224, 224000));
        assert_eq!(resized_size(ResizeTarget::ShortestEdge(224), 400, 600), (224, 336));
    }

    #[test]
    fn small_images_are_padded_with_zeros() {
        let config =
            PreprocessConfig { resize: ResizeTarget::None, crop: Some((4, 4)), ..PreprocessConfig::for_image_size(4) };
        let img = Rgb8 { width: 2, height: 1, data: vec![9; 6] };
        let out = resize_and_crop(&img, &config);
        assert_eq!((out.width, out.height), (4, 4));
        assert_eq!(out.data.iter().filter(|&&v| v == 9).count(), 6);
        // ceil((4 - 1) / 2) = 2 rows above, 1 column to the left.
        assert_eq!(out.data[(2 * 4 + 1) * 3], 9);
    }

    #[test]
    fn rgba_length_is_checked() {
        assert!(from_rgba(2, 2, &[0; 15]).is_err());
        assert!(from_rgba(0, 2, &[]).is_err());
    }
}
