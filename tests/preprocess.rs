//! Preprocessing parity with transformers' `CLIPImageProcessor` (PIL backend) at CLIP's real
//! 224×224: the resized, center-cropped 8-bit pixels of real photos and odd images, compared
//! with the crops `make_fixtures.py` saved (as lossless PNG) from transformers.

mod common;

use common::fixtures;
use webclip::PreprocessConfig;
use webclip::preprocess::{Rgb8, decode, decode_upright, from_rgba, resize_and_crop};

fn reference_crop(image: &str) -> Rgb8 {
    let name = format!("{}.png", image.replace('.', "_"));
    let img = image::open(fixtures().join("reference/preprocess").join(name)).unwrap().to_rgb8();
    Rgb8 { width: img.width() as usize, height: img.height() as usize, data: img.into_raw() }
}

fn our_crop(path: &str) -> Rgb8 {
    let img = decode(&std::fs::read(fixtures().join("images").join(path)).unwrap()).unwrap();
    resize_and_crop(&img, &PreprocessConfig::for_image_size(224))
}

/// (values that differ, largest difference)
fn compare(a: &Rgb8, b: &Rgb8) -> (usize, u8) {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let diffs = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y));
    diffs.fold((0, 0), |(n, m), d| (n + usize::from(d > 0), m.max(d)))
}

/// Every image, photos and odd ones, must give Pillow's crop value for value. (JPEGs are
/// decoded natively with libjpeg-turbo's arithmetic, as Pillow does; 16-bit grayscale follows
/// the sensible high-byte rule, see make_fixtures.py, where Pillow clamps.)
#[test]
fn crops_equal_pil() {
    let images = [
        "chelsea.png",
        "coffee.png",
        "astronaut.png",
        "rocket.jpg",
        "odd/one_pixel.png",
        "odd/tall_1x1000.png",
        "odd/wide_1000x1.png",
        "odd/gray.png",
        "odd/gray.jpg",
        "odd/cmyk.jpg",
        "odd/rgba.png",
        "odd/gray_alpha.png",
        "odd/rgb16.png",
        "odd/gray16.png",
        "odd/palette_transparent.png",
        "odd/animated.gif",
        "odd/photo.bmp",
        "odd/photo.webp",
        // Read as transformers reads them: EXIF orientation ignored.
        "odd/exif_orientation6.jpg",
        "odd/exif_orientation5.jpg",
        "odd/exif_orientation8.png",
    ];
    let failures: Vec<String> = images
        .iter()
        .filter_map(|path| {
            let name = path.rsplit('/').next().unwrap();
            let (off, max) = compare(&our_crop(path), &reference_crop(name));
            (off > 0).then(|| format!("{path}: {off} values differ, by up to {max}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The canvas path (raw RGBA) gives exactly what decoding the same pixels from a file gives.
#[test]
fn rgba_entry_point_equals_the_file_path() {
    for path in ["odd/rgba.png", "chelsea.png", "odd/gray_alpha.png"] {
        let rgba = image::open(fixtures().join("images").join(path)).unwrap().to_rgba8();
        let (w, h) = (rgba.width() as usize, rgba.height() as usize);
        let via_rgba =
            resize_and_crop(&from_rgba(w, h, rgba.as_raw()).unwrap(), &PreprocessConfig::for_image_size(224));
        assert_eq!(via_rgba, our_crop(path), "{path}");
    }
}

/// `decode_upright` applies the EXIF orientation tag (rotations and flips, in JPEG and PNG) and
/// then equals transformers run on Pillow's `ImageOps.exif_transpose` of the image; files
/// without the tag decode as `decode` does.
#[test]
fn upright_crops_equal_pil_after_exif_transpose() {
    let config = PreprocessConfig::for_image_size(224);
    for path in ["odd/exif_orientation6.jpg", "odd/exif_orientation5.jpg", "odd/exif_orientation8.png"] {
        let bytes = std::fs::read(fixtures().join("images").join(path)).unwrap();
        let raw = decode(&bytes).unwrap();
        let upright = decode_upright(&bytes).unwrap();
        assert_eq!((upright.width, upright.height), (150, 100), "{path}: upright is landscape");
        assert_eq!((raw.width, raw.height), (100, 150), "{path}: stored turned");
        let name = format!("{}_upright", path.rsplit('/').next().unwrap().replace('.', "_"));
        let (off, max) = compare(&resize_and_crop(&upright, &config), &reference_crop(&name));
        assert_eq!(off, 0, "{path}: {off} values differ from exif_transpose + transformers, by up to {max}");
    }
    for path in ["chelsea.png", "rocket.jpg", "odd/cmyk.jpg", "odd/photo.webp"] {
        let bytes = std::fs::read(fixtures().join("images").join(path)).unwrap();
        assert_eq!(decode_upright(&bytes).unwrap(), decode(&bytes).unwrap(), "{path}");
    }
}
