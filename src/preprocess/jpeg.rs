//! JPEG decoding with libjpeg-turbo's arithmetic (through mozjpeg), for native builds.
//!
//! transformers decodes with Pillow, and Pillow with libjpeg-turbo. Pure-Rust decoders round
//! the IDCT and chroma upsampling differently (zune-jpeg: about 1% of values off by 1–2 on
//! the fixtures), so natively webclip uses the same decoder family and gets identical pixels.
//! (In the browser, the browser decodes — Chromium also with libjpeg-turbo — and hands RGBA.)
//!
//! As in Pillow, a truncated file is an error rather than a gray-padded image, and CMYK is
//! read with Adobe's inverted polarity and converted with Pillow's `cmyk2rgb`.

use std::ffi::c_int;

use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys as ffi;

use super::{Rgb8, check_size};
use crate::Error;

/// libjpeg's fatal errors: unwind with the library's message (caught in [`decode`]).
unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    let mut buffer = [0u8; 80];
    // SAFETY: `err` is the error manager libjpeg is calling us through, set up in `decode`;
    // format_message writes at most JMSG_LENGTH_MAX (80) bytes, NUL-terminated.
    let message = unsafe {
        match cinfo.err.as_ref().and_then(|e| e.format_message) {
            Some(format) => {
                format(cinfo, &buffer);
                let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
                String::from_utf8_lossy(&buffer[..end]).into_owned()
            }
            None => "corrupt JPEG data".into(),
        }
    };
    buffer.fill(0);
    std::panic::resume_unwind(Box::new(message));
}

/// libjpeg's warnings: a premature end of data is fatal (Pillow: "image file is truncated");
/// the rest (e.g. stray bytes between markers) are tolerated as Pillow tolerates them.
unsafe extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // SAFETY: as in `error_exit`.
    let code = unsafe { cinfo.err.as_ref().map(|e| e.msg_code).unwrap_or(0) };
    if level < 0 && code == ffi::JWRN_JPEG_EOF as c_int {
        std::panic::resume_unwind(Box::new("the JPEG file is truncated".to_string()));
    }
}

fn error_manager() -> ffi::jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is a plain C struct; jpeg_std_error fills every field.
    let mut err: ffi::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { ffi::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
    err
}

/// Decode a JPEG to RGB exactly as Pillow's `Image.open(...).convert("RGB")` does.
pub fn decode(bytes: &[u8]) -> Result<Rgb8, Error> {
    match std::panic::catch_unwind(|| decode_unwinding(bytes)) {
        Ok(result) => result,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "corrupt JPEG data".into());
            Err(Error::Image(format!("cannot decode the JPEG: {msg}")))
        }
    }
}

fn decode_unwinding(bytes: &[u8]) -> Result<Rgb8, Error> {
    let io = |e: std::io::Error| Error::Image(format!("cannot decode the JPEG: {e}"));
    let d = Decompress::with_err(error_manager()).from_mem(bytes).map_err(io)?;
    let (width, height) = d.size();
    check_size(width, height)?;
    let data = match d.color_space() {
        ColorSpace::JCS_GRAYSCALE => {
            let mut s = d.grayscale().map_err(io)?;
            let gray: Vec<u8> = s.read_scanlines().map_err(io)?;
            s.finish().map_err(io)?;
            gray.iter().flat_map(|&l| [l, l, l]).collect()
        }
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => {
            let mut s = d.to_colorspace(ColorSpace::JCS_CMYK).map_err(io)?;
            let cmyk: Vec<[u8; 4]> = s.read_scanlines().map_err(io)?;
            s.finish().map_err(io)?;
            cmyk.iter().flat_map(|&p| cmyk_to_rgb(p)).collect()
        }
        _ => {
            let mut s = d.rgb().map_err(io)?;
            let rgb: Vec<[u8; 3]> = s.read_scanlines().map_err(io)?;
            s.finish().map_err(io)?;
            rgb.concat()
        }
    };
    Ok(Rgb8 { width, height, data })
}

/// Pillow reads CMYK JPEGs as Adobe-inverted ("CMYK;I") and converts with `cmyk2rgb`:
/// `r = (255 - k) - (255 - k) · c / 255`, the product rounded by Pillow's MULDIV255.
fn cmyk_to_rgb(stored: [u8; 4]) -> [u8; 3] {
    let [c, m, y, k] = stored.map(|v| 255 - u32::from(v));
    let nk = 255 - k;
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    [c, m, y].map(|v| (nk - muldiv255(v, nk)) as u8)
}
