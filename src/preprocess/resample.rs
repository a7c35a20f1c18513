//! Pillow's bicubic resampling of 8-bit images, reproduced exactly.
//!
//! CLIP was trained on images that PIL resized, and a ±1 error in every pixel already moves a
//! ViT-B/16 embedding by 2e-4, so "close" is not enough. No crate reproduces Pillow's
//! arithmetic (fast_image_resize and image use other fixed-point schemes), hence this file,
//! which follows `libImaging/Resample.c`:
//!
//! * the filter is Keys' cubic with a = -0.5 and support 2, stretched by the downscale factor;
//! * each output pixel's weights are normalized to sum 1, then rounded to 22-bit fixed point;
//! * the horizontal pass runs first and rounds to `u8`, then the vertical pass.
//!
//! Only the output window that is kept (the center crop) is computed, so a 1×1000 image that
//! transformers resizes to 224×224000 before cropping costs no more than any other.

/// Fixed-point precision of the weights (`PRECISION_BITS` in Pillow: 32 - 8 - 2).
const PRECISION_BITS: u32 = 22;

/// Keys' cubic convolution kernel with a = -0.5 (Pillow's `bicubic_filter`).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For one output index: the first input index and the fixed-point weights from there on.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for output index `out`.
fn taps(in_size: usize, out_size: usize, out: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let center = (out as f64 + 0.5) * scale;
    let ss = 1.0 / filterscale;
    // C's (int) cast truncates toward zero; the result is then clamped into the image.
    let xmin = ((center - support + 0.5) as i64).max(0) as usize;
    let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
    let raw: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) * ss)).collect();
    let total: f64 = raw.iter().sum();
    let weights = raw
        .iter()
        .map(|&w| {
            let w = if total != 0.0 { w / total } else { w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            if w < 0.0 { (fixed - 0.5) as i32 } else { (fixed + 0.5) as i32 }
        })
        .collect();
    Taps { start: xmin, weights }
}

/// Round a fixed-point accumulator to `u8` (Pillow's `clip8`).
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One output pixel: the taps' weighted sum of the RGB pixels `pixel(index)`, started at
/// one half (rounding), then rounded to `u8`.
fn convolve<'a>(t: &Taps, pixel: impl Fn(usize) -> &'a [u8], out: &mut [u8]) {
    let mut acc = [1i64 << (PRECISION_BITS - 1); 3];
    for (i, &k) in t.weights.iter().enumerate() {
        let p = pixel(t.start + i);
        for c in 0..3 {
            acc[c] += i64::from(p[c]) * i64::from(k);
        }
    }
    for c in 0..3 {
        out[c] = clip8(acc[c]);
    }
}

/// An interleaved RGB image, 8 bits per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb8 {
    fn px(&self, x: usize, y: usize) -> &[u8] {
        let i = (y * self.width + x) * 3;
        &self.data[i..i + 3]
    }
}

/// A window `[x0, x0 + w) × [y0, y0 + h)` of `src` resized to `out_w × out_h` with Pillow's
/// bicubic filter. The window must lie inside the resized image.
pub fn resize_window(src: &Rgb8, out_w: usize, out_h: usize, x0: usize, y0: usize, w: usize, h: usize) -> Rgb8 {
    debug_assert!(x0 + w <= out_w && y0 + h <= out_h);
    let need_h = out_w != src.width;
    let need_v = out_h != src.height;
    let col_taps: Vec<Taps> =
        if need_h { (x0..x0 + w).map(|x| taps(src.width, out_w, x)).collect() } else { Vec::new() };
    let row_taps: Vec<Taps> =
        if need_v { (y0..y0 + h).map(|y| taps(src.height, out_h, y)).collect() } else { Vec::new() };

    // Input rows the vertical pass reads (or the rows kept, when there is none).
    let (r0, r1) = if need_v {
        let first = row_taps.iter().map(|t| t.start).min().unwrap_or(0);
        let last = row_taps.iter().map(|t| t.start + t.weights.len()).max().unwrap_or(0);
        (first, last)
    } else {
        (y0, y0 + h)
    };

    // Horizontal pass over those rows: `w` columns, rounded to u8 as Pillow's intermediate image.
    let mid_rows = r1 - r0;
    let mut mid = vec![0u8; mid_rows * w * 3];
    for (my, y) in (r0..r1).enumerate() {
        for ox in 0..w {
            let out = &mut mid[(my * w + ox) * 3..(my * w + ox) * 3 + 3];
            if need_h {
                convolve(&col_taps[ox], |x| src.px(x, y), out);
            } else {
                out.copy_from_slice(src.px(x0 + ox, y));
            }
        }
    }

    // Vertical pass into the kept window.
    let mut data = vec![0u8; w * h * 3];
    for oy in 0..h {
        for ox in 0..w {
            let out = &mut data[(oy * w + ox) * 3..(oy * w + ox) * 3 + 3];
            if need_v {
                convolve(&row_taps[oy], |y| &mid[((y - r0) * w + ox) * 3..][..3], out);
            } else {
                let my = y0 + oy - r0;
                out.copy_from_slice(&mid[(my * w + ox) * 3..(my * w + ox) * 3 + 3]);
            }
        }
    }
    Rgb8 { width: w, height: h, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(451, 224), (224, 224), (1, 224), (1000, 7), (3, 1000)] {
            for x in [0, o / 2, o - 1] {
                let t = taps(i, o, x);
                let s: i64 = t.weights.iter().map(|&k| i64::from(k)).sum();
                // Each weight is rounded on its own: the sum is off by at most half a unit per tap.
                let slack = t.weights.len() as i64 / 2 + 1;
                assert!((s - (1 << PRECISION_BITS)).abs() <= slack, "{i}->{o} at {x}: {s}");
            }
        }
    }

    #[test]
    fn identity_size_copies() {
        let src = Rgb8 { width: 4, height: 3, data: (0..36).map(|v| (v * 7) as u8).collect() };
        assert_eq!(resize_window(&src, 4, 3, 0, 0, 4, 3), src);
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = Rgb8 { width: 37, height: 11, data: vec![123; 37 * 11 * 3] };
        let out = resize_window(&src, 80, 24, 3, 2, 70, 20);
        assert!(out.data.iter().all(|&v| v == 123));
    }
}
