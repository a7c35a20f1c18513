//! The CPU's Linear layer, its weight packed once, at load, for the matrix product.
//!
//! burn's CPU backend (flex) multiplies through the `gemm` crate, which re-lays the weight into
//! its kernel's panels on every call: its products were 84% of a CPU pass in the page. Here
//! the weight is packed when the model loads, and the product reads it as packed:
//!
//! - natively, by rten-gemm ([`PackedBMatrix`]; AVX-512 or AVX2 + FMA kernels, rayon over
//!   every core): 1.8–2.3× faster than gemm at ViT-B/32's shapes;
//! - in wasm, by webclip's own SIMD128 kernel ([`super::simd128`]), 1.3–1.7× faster in
//!   Chromium than both gemm and rten-gemm, whose tiles are too large for V8's registers;
//! - in wasm with 8-bit weights (`dtype=q8`), by its 8-bit kernel ([`super::simd128_q8`]):
//!   the weights stay 8-bit, the activations are quantized per row and block of 32 as they
//!   come. Natively 8-bit weights are widened to f32 at load and take rten-gemm's product.
//!
//! Measured side by side: `scripts/bench/gemm/`, `docs/cpu.md`. The bias is added inside the
//! product; the activation and the residual in one pass over the output while it is in cache.

use std::fmt;

#[cfg(not(target_family = "wasm"))]
use rten_gemm::{BiasVector, GemmExecutor, GemmInputA, GemmInputB, GemmOptions, PackedBMatrix};
#[cfg(not(target_family = "wasm"))]
use rten_tensor::NdTensorView;

use super::Activation;

#[cfg(not(target_family = "wasm"))]
thread_local! {
    /// The executor picks its kernel (AVX-512, AVX2 + FMA, generic) when made; it is not
    /// `Sync`, so each thread has its own. Packed weights carry the kernel's name and are
    /// checked against it; every executor of a process picks the same kernel.
    static GEMM: GemmExecutor<f32> = GemmExecutor::default();
}

/// The packed weight: rten-gemm's natively, [`super::simd128`]'s panels (with the bias padded
/// to whole panels) in wasm.
#[cfg(not(target_family = "wasm"))]
struct Packed(PackedBMatrix<f32>);
#[cfg(target_family = "wasm")]
enum Packed {
    F32 { panels: Vec<f32>, bias: Vec<f32> },
    Q8(super::simd128_q8::Packed),
}

#[cfg(target_family = "wasm")]
thread_local! {
    /// The activations of the 8-bit product being computed, quantized: one buffer reused.
    static QUANTIZED: std::cell::RefCell<super::simd128_q8::Quantized> = Default::default();
}

/// A Linear layer's weight (and bias) in the form the CPU's product reads.
pub struct PackedLinear {
    weight: Packed,
    bias: Option<Vec<f32>>,
    d_in: usize,
    d_out: usize,
}

impl fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedLinear {{ d_in: {}, d_out: {}, bias: {} }}", self.d_in, self.d_out, self.bias.is_some())
    }
}

impl PackedLinear {
    /// From `weight`, row-major `[d_in, d_out]` (burn's Linear layout), and its bias. In wasm
    /// the packed weight reuses `weight`'s memory where it can ([`super::simd128::pack`]).
    pub fn new(weight: Vec<f32>, d_in: usize, d_out: usize, bias: Option<Vec<f32>>) -> Self {
        assert_eq!(weight.len(), d_in * d_out, "a [{d_in}, {d_out}] weight");
        #[cfg(not(target_family = "wasm"))]
        let packed = Packed(GEMM.with(|g| g.prepack_b(NdTensorView::from_data([d_in, d_out], weight.as_slice()))));
        #[cfg(target_family = "wasm")]
        let packed = {
            use super::simd128::{NR, pack};
            let mut padded = vec![0.0; d_out.div_ceil(NR) * NR];
            if let Some(b) = &bias {
                padded[..d_out].copy_from_slice(b);
            }
            Packed::F32 { panels: pack(weight, d_in, d_out), bias: padded }
        };
        Self { weight: packed, bias, d_in, d_out }
    }

    /// From an 8-bit weight as the file stores it (`[d_out, d_in]`, blocks of 32 along
    /// `d_in`), kept 8-bit ([`super::simd128_q8::Packed::new`], in place where it can).
    #[cfg(target_family = "wasm")]
    pub fn q8(weight: crate::quant::QuantMatrix, bias: Option<Vec<f32>>) -> Self {
        let (d_out, d_in) = (weight.rows, weight.cols);
        let packed = super::simd128_q8::Packed::new(weight.values, &weight.scales, d_in, d_out, bias.as_deref());
        Self { weight: Packed::Q8(packed), bias, d_in, d_out }
    }

    /// Whether the weight is held in 8 bits.
    pub fn is_q8(&self) -> bool {
        #[cfg(target_family = "wasm")]
        return matches!(self.weight, Packed::Q8(_));
        #[cfg(not(target_family = "wasm"))]
        false
    }

    pub fn d_in(&self) -> usize {
        self.d_in
    }

    pub fn d_out(&self) -> usize {
        self.d_out
    }

    /// `act(x · W + b)`, plus `residual` if given: `x` row-major `[rows, d_in]`, the result and
    /// `residual` `[rows, d_out]`. [`Activation::Gelu`] is left to the caller (no `erf` here).
    /// In wasm the activation and the residual are applied by the product itself, to each panel
    /// as it is done (on the thread that computed it, in the threaded module); natively in a
    /// pass over the output.
    pub fn forward(&self, x: &[f32], activation: Activation, residual: Option<&[f32]>) -> Vec<f32> {
        let rows = x.len() / self.d_in.max(1);
        assert_eq!(x.len(), rows * self.d_in, "x is [rows, {}]", self.d_in);
        let d_out = self.d_out;
        if let Some(residual) = residual {
            assert_eq!(residual.len(), rows * d_out, "residual is [rows, {d_out}]");
        }
        let gelu = activation == Activation::QuickGelu;
        // The same operations, in the same order, wherever they run.
        let finish = |part: &mut [f32], row: usize, col: usize| {
            if gelu {
                quick_gelu(part);
            }
            if let Some(residual) = residual {
                for (o, r) in part.iter_mut().zip(&residual[row * d_out + col..]) {
                    *o += r;
                }
            }
        };
        let mut out = vec![0.0; rows * d_out];
        #[cfg(not(target_family = "wasm"))]
        {
            let options = GemmOptions { bias: self.bias.as_deref().map(BiasVector::Row), ..Default::default() };
            let a = GemmInputA::Unpacked(NdTensorView::from_data([rows, self.d_in], x));
            GEMM.with(|g| g.gemm(&mut out, a, GemmInputB::Packed(&self.weight.0), options))
                .expect("the packed weight's shape and kernel match the executor's");
            if gelu || residual.is_some() {
                for (row, part) in out.chunks_mut(d_out.max(1)).enumerate() {
                    finish(part, row, 0);
                }
            }
        }
        #[cfg(target_family = "wasm")]
        match &self.weight {
            Packed::F32 { panels, bias } => {
                super::simd128::gemm(x, rows, self.d_in, d_out, panels, bias, &mut out, finish)
            }
            Packed::Q8(w) => QUANTIZED.with_borrow_mut(|q| {
                super::simd128_q8::quantize(x, rows, self.d_in, q);
                super::simd128_q8::gemm(q, rows, w, &mut out, finish);
            }),
        }
        out
    }
}

/// CLIP's `quick_gelu`, `x · σ(1.702 x)`, in place. A loop without calls, so the compiler
/// vectorizes it (SIMD128 in wasm, where libm's `expf` is scalar).
fn quick_gelu(values: &mut [f32]) {
    for v in values {
        *v /= 1.0 + exp(-1.702 * *v);
    }
}

/// `e^x` for f32, within 2 ulp of `f32::exp` over the range where the result is normal, in
/// straight-line arithmetic: `x = n ln 2 + r`, `|r| ≤ ln 2 / 2` (ln 2 in two parts, so `r` is
/// exact), `e^r` by its degree-7 Taylor polynomial, `2^n` built in the exponent bits. Below
/// -87.3 it is 0's neighbourhood (clamped to the smallest normal's), above 88.7, `+∞`-ward
/// (clamped to `f32::MAX`'s); NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.336_55, 88.722_83);
    // Round to nearest by the 1.5 · 2^23 trick (plain adds: vectorizes on every target).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // n in [-126, 128]: 2^n as bits; 2^128 would overflow the exponent, so scale in two halves.
    let n = n as i32;
    let half = n >> 1;
    let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    p * scale(half) * scale(n - half)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Against a plain triple loop in f64, at shapes no kernel tile divides (and K above the
    /// kernel's depth block, so several packed blocks are summed).
    #[test]
    fn the_packed_product_equals_the_plain_one_at_awkward_shapes() {
        for (rows, d_in, d_out) in [(1, 1, 1), (3, 7, 5), (50, 33, 17), (13, 300, 130), (5, 1100, 9), (77, 64, 200)] {
            let (x, w, b, r) =
                (values(rows * d_in, 1), values(d_in * d_out, 2), values(d_out, 3), values(rows * d_out, 4));
            let packed = PackedLinear::new(w.clone(), d_in, d_out, Some(b.clone()));
            for (activation, residual) in
                [(Activation::None, None), (Activation::QuickGelu, None), (Activation::None, Some(&r[..]))]
            {
                let got = packed.forward(&x, activation, residual);
                for i in 0..rows {
                    for j in 0..d_out {
                        let mut h = b[j] as f64;
                        for k in 0..d_in {
                            h += x[i * d_in + k] as f64 * w[k * d_out + j] as f64;
                        }
                        if activation == Activation::QuickGelu {
                            h /= 1.0 + (-1.702 * h).exp();
                        }
                        if let Some(r) = residual {
                            h += r[i * d_out + j] as f64;
                        }
                        let tolerance = 1e-6 * (d_in as f64).sqrt() * 4.0 + 1e-6;
                        let g = got[i * d_out + j] as f64;
                        assert!(
                            (g - h).abs() <= tolerance,
                            "[{rows}, {d_in}] · [{d_in}, {d_out}] {activation:?} at ({i}, {j}): {g} vs {h}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn exp_is_within_2_ulp_of_std() {
        let ulp = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let mut worst = (0.0f32, 0u64);
        let mut x = -87.0f32;
        while x < 88.5 {
            let d = ulp(exp(x), x.exp());
            if d > worst.1 {
                worst = (x, d);
            }
            x += 0.000_731;
        }
        assert!(worst.1 <= 2, "exp({}) is {} ulp from std's", worst.0, worst.1);
        for (x, want) in [(0.0, 1.0), (1.0, std::f32::consts::E), (-1.0, 1.0 / std::f32::consts::E)] {
            assert!(ulp(exp(x), want) <= 1, "exp({x}) = {}", exp(x));
        }
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(1000.0) > 1e38);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn without_a_bias_nothing_is_added() {
        let w = values(4 * 3, 5);
        let x = values(2 * 4, 6);
        let got = PackedLinear::new(w.clone(), 4, 3, None).forward(&x, Activation::None, None);
        let want: Vec<f32> = (0..6).map(|o| (0..4).map(|k| x[(o / 3) * 4 + k] * w[k * 3 + o % 3]).sum()).collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }
}
