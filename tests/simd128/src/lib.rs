//! `check(m, k, n, mutation)`: webclip's kernel against a plain f64 product at `[m, k] · [k, n]`
//! with a bias. Returns the largest difference relative to the result's largest magnitude (at
//! least 1); infinity if an output was left unwritten.

#![cfg(target_arch = "wasm32")]

#[path = "../../../src/kernels/simd128.rs"]
mod simd128;

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

#[unsafe(no_mangle)]
pub extern "C" fn check(m: usize, k: usize, n: usize) -> f64 {
    let (a, w, bias) = (values(m * k, 7), values(k * n, 8), values(n, 9));
    let mut padded = vec![0.0; n.div_ceil(simd128::NR) * simd128::NR];
    padded[..n].copy_from_slice(&bias);
    let mut out = vec![f32::NAN; m * n];
    simd128::gemm(&a, m, k, n, &simd128::pack(w.clone(), k, n), &padded, &mut out);
    let mut want = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            want[i * n + j] = bias[j] as f64 + (0..k).map(|l| a[i * k + l] as f64 * w[l * n + j] as f64).sum::<f64>();
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
    simd128::RELAXED as u32
}
