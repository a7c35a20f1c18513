//! webclip's wasm kernels alone, at any shape, for `tests/e2e/kernel.test.mjs`:
//!
//! - `check(m, k, n)`: the f32 kernel against a plain f64 product at `[m, k] · [k, n]` with a
//!   bias, and a residual added by the kernel's finishing step (`finish`, which must reach each
//!   output once: a panel or row it skips or repeats is off by the residual);
//! - `check_q8(m, k, n, kind)`: the 8-bit kernel against the same arithmetic done plainly: the
//!   activations quantized as `simd128_q8::quantize` documents (per row and block of 32, to
//!   7 bits from the block's minimum to its maximum, half to even), then an f64 sum of
//!   `(u - z) · w · scales`;
//! - `digest_q8(m, k, n, kind)`: a hash of the 8-bit kernel's output bits, which must be the
//!   same in both modules.
//!
//! Each check returns the largest difference relative to the result's largest magnitude (at
//! least 1); infinity if an output was left unwritten. With the `threads` feature the products
//! spread their panels over the rayon pool `initThreadPool` starts, as in the page's threaded
//! module; `threads()` says how many threads there are.

#![cfg(target_arch = "wasm32")]

#[path = "../../../src/kernels/parallel.rs"]
#[allow(dead_code)] // `on_pool`, for webclip's forward passes, not used by these products alone
mod parallel;
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// The pool's threads (1 without the `threads` feature).
#[unsafe(no_mangle)]
pub extern "C" fn threads() -> usize {
    #[cfg(feature = "threads")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    1
}

#[path = "../../../src/kernels/simd128.rs"]
mod simd128;
#[path = "../../../src/kernels/simd128_q8.rs"]
#[allow(dead_code)] // what webclip reads of it and this check does not
mod simd128_q8;

fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// A finishing step that adds `residual` (`[m, n]`) to the part of the row it is given.
fn add(residual: &[f32], n: usize) -> impl Fn(&mut [f32], usize, usize) + Sync + '_ {
    move |part, row, col| {
        for (o, r) in part.iter_mut().zip(&residual[row * n + col..]) {
            *o += r;
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn check(m: usize, k: usize, n: usize) -> f64 {
    let (a, w, bias) = (values(m * k, 7), values(k * n, 8), values(n, 9));
    let mut padded = vec![0.0; n.div_ceil(simd128::NR) * simd128::NR];
    padded[..n].copy_from_slice(&bias);
    let mut out = vec![f32::NAN; m * n];
    let residual = values(m * n, 10);
    simd128::gemm(&a, m, k, n, &simd128::pack(w.clone(), k, n), &padded, &mut out, add(&residual, n));
    let mut want = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let sum = (0..k).map(|l| a[i * k + l] as f64 * w[l * n + j] as f64).sum::<f64>();
            want[i * n + j] = bias[j] as f64 + sum + residual[i * n + j] as f64;
        }
    }
    let scale = want.iter().fold(1f64, |s, v| s.max(v.abs()));
    out.iter()
        .zip(&want)
        .map(|(g, w)| if g.is_nan() { f64::INFINITY } else { (*g as f64 - w).abs() / scale })
        .fold(0.0, f64::max)
}

/// Whether this module was built with relaxed SIMD (the test checks it loaded the one it meant).
#[unsafe(no_mangle)]
pub extern "C" fn relaxed() -> u32 {
    (simd128::RELAXED && simd128_q8::RELAXED) as u32
}

/// 8-bit inputs of kind 0 (random), 1 (every weight ±127 and the activations at their blocks'
/// extremes: the largest sums the dot products can make), 2 (random, with all-zero blocks of
/// activations and of weights), 3 (random, with blocks of activations of one sign) or 4 (ties:
/// blocks from -62.5 to 64.5, so the scale is 1, the zero point 62.5 and values such as 2.5
/// fall halfway between two steps).
fn q8_inputs(m: usize, k: usize, n: usize, kind: u32) -> (Vec<f32>, Vec<i8>, Vec<f32>, Vec<f32>) {
    let mut x = values(m * k, 11);
    let mut w: Vec<i8> = values(n * k, 12).iter().map(|v| (v * 127.0).round() as i8).collect();
    let scales: Vec<f32> = values(n * k / 32, 13).iter().map(|v| (v.abs() + 0.01) / 127.0).collect();
    let bias = values(n, 14);
    if kind == 1 {
        x.iter_mut().enumerate().for_each(|(i, v)| *v = if i % 3 == 0 { -2.5 } else { 2.5 });
        w.iter_mut().enumerate().for_each(|(i, v)| *v = if (i / 7) % 2 == 0 { 127 } else { -127 });
    }
    if kind == 2 {
        x.chunks_mut(32).step_by(3).for_each(|b| b.fill(0.0));
        w.chunks_mut(32).step_by(5).for_each(|b| b.fill(0));
    }
    if kind == 4 {
        x.iter_mut().enumerate().for_each(|(i, v)| {
            *v = match i % 4 {
                0 => -62.5,
                1 => 64.5,
                2 => (i % 9) as f32 - 3.5,
                _ => *v,
            }
        });
    }
    if kind == 3 {
        for (i, b) in x.chunks_mut(32).enumerate() {
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            b.iter_mut().for_each(|v| *v = sign * (v.abs() + 0.25));
        }
    }
    (x, w, scales, bias)
}

fn run_q8(m: usize, k: usize, n: usize, kind: u32) -> (Vec<f32>, Vec<f64>) {
    let (x, w, scales, bias) = q8_inputs(m, k, n, kind);
    let packed = simd128_q8::Packed::new(w.clone(), &scales, k, n, Some(&bias));
    let mut q = simd128_q8::Quantized::default();
    simd128_q8::quantize(&x, m, k, &mut q);
    let mut out = vec![f32::NAN; m * n];
    let residual = values(m * n, 10);
    simd128_q8::gemm(&q, m, &packed, &mut out, add(&residual, n));
    let blocks = k / 32;
    let mut want = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut h = bias[j] as f64;
            for b in 0..blocks {
                let block = &x[i * k + b * 32..i * k + b * 32 + 32];
                let lo = block.iter().fold(0f32, |a, &v| a.min(v));
                let hi = block.iter().fold(0f32, |a, &v| a.max(v));
                let scale = (hi - lo) / 127.0;
                let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                let z = (-lo * inv).round_ties_even();
                let u = |v: f32| ((v * inv).round_ties_even() + z).clamp(0.0, 127.0) as i64;
                let sum: i64 = (0..32).map(|l| (u(block[l]) - z as i64) * w[j * k + b * 32 + l] as i64).sum();
                h += sum as f64 * scale as f64 * scales[j * blocks + b] as f64;
            }
            want[i * n + j] = h + residual[i * n + j] as f64;
        }
    }
    (out, want)
}

#[unsafe(no_mangle)]
pub extern "C" fn check_q8(m: usize, k: usize, n: usize, kind: u32) -> f64 {
    let (out, want) = run_q8(m, k, n, kind);
    let scale = want.iter().fold(1f64, |s, v| s.max(v.abs()));
    out.iter()
        .zip(&want)
        .map(|(g, w)| if g.is_nan() { f64::INFINITY } else { (*g as f64 - w).abs() / scale })
        .fold(0.0, f64::max)
}

/// FNV-1a over the output's bits, as a float (exact below 2^53).
#[unsafe(no_mangle)]
pub extern "C" fn digest_q8(m: usize, k: usize, n: usize, kind: u32) -> f64 {
    let (out, _) = run_q8(m, k, n, kind);
    let h = out.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| (h ^ v.to_bits() as u64).wrapping_mul(0x100_0000_01b3));
    (h >> 11) as f64
}
