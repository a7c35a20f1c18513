//! gemm (burn flex's matrix product), rten-gemm, and webclip's own wasm kernel
//! (src/kernels/simd128.rs, included as it is) behind one C ABI, so the same code is timed
//! natively (`main.rs`) and in wasm (`run-chromium.mjs`):
//! `out[M, N] = a[M, K] · b[K, N]`, one thread. Figures: docs/cpu.md.
//!
//! ```sh
//! cargo run --release                                    # natively
//! RUSTFLAGS="-C target-feature=+simd128" cargo build --release --target wasm32-unknown-unknown --lib --target-dir target/simd
//! RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd --cfg webclip_relaxed_simd" \
//!   cargo build --release --target wasm32-unknown-unknown --lib --target-dir target/relaxed
//! node run-chromium.mjs target/{simd,relaxed}/wasm32-unknown-unknown/release/gemm_compare.wasm
//! ```

use rten_gemm::{GemmExecutor, GemmInputA, GemmInputB, PackedBMatrix};
use rten_tensor::NdTensorView;

/// webclip's wasm kernel itself, as the crate compiles it.
#[cfg(target_arch = "wasm32")]
#[path = "../../../../src/kernels/simd128.rs"]
pub mod simd128;

/// webclip's 8-bit kernel itself (src/kernels/simd128_q8.rs), as the crate compiles it.
#[cfg(target_arch = "wasm32")]
#[path = "../../../../src/kernels/simd128_q8.rs"]
pub mod simd128_q8;

/// A prototype of 8-bit products (before webclip's kernel).
#[cfg(target_arch = "wasm32")]
pub mod q8;

pub struct Case {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    out: Vec<f32>,
    packed: PackedBMatrix<f32>,
    #[cfg(target_arch = "wasm32")]
    mine: Vec<f32>,
    #[cfg(target_arch = "wasm32")]
    bias: Vec<f32>,
    #[cfg(target_arch = "wasm32")]
    q8: q8::Packed,
    #[cfg(target_arch = "wasm32")]
    xq: (Vec<i16>, Vec<f32>),
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    q7: (q8::relaxed::Packed, Vec<u8>, Vec<f32>),
    #[cfg(target_arch = "wasm32")]
    committed_q8: (simd128_q8::Packed, simd128_q8::Quantized),
}

/// `b` `[k, n]` as a q8 file stores it: `[n, k]` i8, symmetric per column and block of 32,
/// with the scales `[n, k / 32]`.
#[cfg(target_arch = "wasm32")]
fn file_q8(b: &[f32], k: usize, n: usize) -> (Vec<i8>, Vec<f32>) {
    let blocks = k / simd128_q8::BLOCK;
    let (mut values, mut scales) = (vec![0i8; n * k], vec![0f32; n * blocks]);
    for c in 0..n {
        for bl in 0..blocks {
            let ks = bl * simd128_q8::BLOCK..(bl + 1) * simd128_q8::BLOCK;
            let max = ks.clone().map(|i| b[i * n + c].abs()).fold(0f32, f32::max);
            let s = max / 127.0;
            scales[c * blocks + bl] = s;
            for i in ks {
                values[c * k + i] = if s > 0.0 { (b[i * n + c] / s).round() as i8 } else { 0 };
            }
        }
    }
    (values, scales)
}

thread_local! {
    static EXEC: GemmExecutor<f32> = GemmExecutor::default();
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

impl Case {
    pub fn new(m: usize, k: usize, n: usize) -> Self {
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let packed = EXEC.with(|e| e.prepack_b(NdTensorView::from_data([k, n], b.as_slice())));
        Self {
            m,
            k,
            n,
            #[cfg(target_arch = "wasm32")]
            mine: simd128::pack(b.clone(), k, n),
            #[cfg(target_arch = "wasm32")]
            bias: vec![0.0; n.div_ceil(simd128::NR) * simd128::NR],
            #[cfg(target_arch = "wasm32")]
            q8: q8::pack(&b, k, n),
            #[cfg(target_arch = "wasm32")]
            xq: (Vec::new(), Vec::new()),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            q7: (q8::relaxed::pack(&b, k, n), Vec::new(), Vec::new()),
            #[cfg(target_arch = "wasm32")]
            committed_q8: {
                let (values, scales) = file_q8(&b, k, n);
                (simd128_q8::Packed::new(values, &scales, k, n, None), Default::default())
            },
            a,
            b,
            out: vec![0.0; m * n],
            packed,
        }
    }

    /// gemm, as flex calls it (no parallelism, B packed inside each call).
    pub fn gemm(&mut self) {
        let (m, k, n) = (self.m, self.k, self.n);
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                self.out.as_mut_ptr(),
                1,
                n as isize,
                false,
                self.a.as_ptr(),
                1,
                k as isize,
                self.b.as_ptr(),
                1,
                n as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// rten-gemm with B packed once (`packed`) or per call.
    pub fn rten(&mut self, prepacked: bool) {
        let a = GemmInputA::Unpacked(NdTensorView::from_data([self.m, self.k], self.a.as_slice()));
        let b = if prepacked {
            GemmInputB::Packed(&self.packed)
        } else {
            GemmInputB::Unpacked(NdTensorView::from_data([self.k, self.n], self.b.as_slice()))
        };
        EXEC.with(|e| e.gemm(&mut self.out, a, b, Default::default())).unwrap();
    }

    /// webclip's SIMD128 kernel (src/kernels/simd128.rs), the weight packed once.
    #[cfg(target_arch = "wasm32")]
    pub fn webclip(&mut self) {
        simd128::gemm(&self.a, self.m, self.k, self.n, &self.mine, &self.bias, &mut self.out);
    }

    /// The 8-bit prototype: quantize the activations, then the int8 product.
    #[cfg(target_arch = "wasm32")]
    pub fn int8(&mut self) {
        let (q, s) = &mut self.xq;
        q8::quantize(&self.a, self.m, self.k, q, s);
        q8::gemm(q, s, self.m, &self.q8, &mut self.out);
    }

    /// The 8-bit prototype with relaxed SIMD's i8 × i7 dot product.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    pub fn int8_relaxed(&mut self) {
        let (w, q, s) = &mut self.q7;
        q8::relaxed::quantize(&self.a, self.m, self.k, q, s);
        q8::relaxed::gemm(q, s, self.m, w, &mut self.out);
    }

    /// webclip's 8-bit kernel (src/kernels/simd128_q8.rs): quantize, then multiply.
    #[cfg(target_arch = "wasm32")]
    pub fn committed_q8(&mut self) {
        let (w, q) = &mut self.committed_q8;
        simd128_q8::quantize(&self.a, self.m, self.k, q);
        simd128_q8::gemm(q, self.m, w, &mut self.out);
    }

    pub fn out(&self) -> &[f32] {
        &self.out
    }
}

/// Milliseconds per call of `engine` (0 gemm, 1 rten packed per call, 2 rten pre-packed), the
/// median of `runs` runs of `iters` calls, timed by `now` (ms).
pub fn time(m: usize, k: usize, n: usize, engine: u32, runs: usize, iters: usize, now: &dyn Fn() -> f64) -> f64 {
    let mut case = Case::new(m, k, n);
    let step = |c: &mut Case| match engine {
        0 => c.gemm(),
        1 => c.rten(false),
        2 => c.rten(true),
        #[cfg(target_arch = "wasm32")]
        3 => c.webclip(),
        #[cfg(target_arch = "wasm32")]
        4 => c.int8(),
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        5 => c.int8_relaxed(),
        #[cfg(target_arch = "wasm32")]
        6 => c.committed_q8(),
        _ => c.rten(true),
    };
    step(&mut case);
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = now();
            for _ in 0..iters {
                step(&mut case);
            }
            (now() - t) / iters as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// Largest difference between gemm's and rten's product (they must agree).
pub fn max_diff(m: usize, k: usize, n: usize, engine: u32) -> f32 {
    let mut case = Case::new(m, k, n);
    case.gemm();
    let g = case.out().to_vec();
    case.out.fill(f32::NAN);
    match engine {
        #[cfg(target_arch = "wasm32")]
        3 => case.webclip(),
        #[cfg(target_arch = "wasm32")]
        4 => case.int8(),
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        5 => case.int8_relaxed(),
        #[cfg(target_arch = "wasm32")]
        6 => case.committed_q8(),
        _ => case.rten(true),
    }
    g.iter().zip(case.out()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

/// webclip's kernel against a plain f64 product at `[m, k] · [k, n]` with a bias: the largest
/// difference relative to the largest magnitude of the result (at least 1).
#[cfg(target_arch = "wasm32")]
pub fn check(m: usize, k: usize, n: usize) -> f64 {
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

#[cfg(target_family = "wasm")]
mod wasm {
    unsafe extern "C" {
        fn now() -> f64;
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn bench(m: usize, k: usize, n: usize, engine: u32, runs: usize, iters: usize) -> f64 {
        super::time(m, k, n, engine, runs, iters, &|| unsafe { now() })
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn check(m: usize, k: usize, n: usize) -> f64 {
        super::check(m, k, n)
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn diff(m: usize, k: usize, n: usize, engine: u32) -> f32 {
        super::max_diff(m, k, n, engine)
    }
}
