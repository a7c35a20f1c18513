//! webclip's 8-bit weights (`webclip convert --dtype q8`): a quarter of the f32 download.
//!
//! The layout, in an ordinary safetensors file (`model.q8.safetensors`, after the variant
//! names Hugging Face's libraries use for `model.fp16.safetensors`):
//!
//! - every float tensor of two or more dimensions whose last dimension is a multiple of
//!   [`BLOCK`] is stored as `I8` under its own key, in its own shape: symmetric, one scale per
//!   [`BLOCK`] consecutive values of the last dimension (for a torch Linear weight `[out, in]`,
//!   along the input dimension, the one a matmul sums over), values in `-127..=127`;
//! - its scales are the F16 tensor `<key>_scale`, of the same shape with the last dimension
//!   divided by [`BLOCK`]: value = `i8 × scale`;
//! - every other tensor (biases, norms, `logit_scale`, `class_embedding`) is kept in f32;
//! - the metadata says `"webclip.quantization": "q8-block32"`.
//!
//! On a GPU, Linear weights stay 8-bit as burn quantized tensors (its `Q8S` values packed in
//! u32, per-block f32 scales): the matmul reads them as they are, so the weights take a
//! quarter of the GPU memory and upload four times faster. On the CPU in wasm (the page) they
//! stay 8-bit on the host and go to the layer itself ([`QuantMatrix::stays_on_host`],
//! `Linear::pack`), whose 8-bit product reads them as the file stores them. Natively on the
//! CPU they are widened to f32 at load (see [`QuantMatrix::to_device`]). The other 8-bit
//! tensors (embeddings, the patch convolution) are widened at load: they are looked up or
//! convolved once per call, not multiplied as matrices.

use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue, ScaleDtype};
use burn::tensor::{Device, Tensor, TensorData};

use crate::Error;

/// Values that share one scale, along the last dimension.
pub const BLOCK: usize = 32;

/// The key of a quantized tensor's scales.
pub fn scale_key(name: &str) -> String {
    format!("{name}_scale")
}

/// Whether `convert --dtype q8` stores a tensor of this shape in 8 bits.
pub fn quantizable(shape: &[usize]) -> bool {
    shape.len() >= 2 && shape.last().is_some_and(|&d| d > 0 && d.is_multiple_of(BLOCK))
}

/// The shape of the scales of a quantized tensor of `shape`.
pub fn scale_shape(shape: &[usize]) -> Vec<usize> {
    let mut s = shape.to_vec();
    if let Some(last) = s.last_mut() {
        *last /= BLOCK;
    }
    s
}

/// Quantize `values` (row-major, last dimension a multiple of [`BLOCK`]): the 8-bit values and
/// one f16 scale per block. Each value is divided by its block's scale as stored (rounded to
/// f16), so that `i8 × scale` is exactly what the loader computes.
pub fn quantize(values: &[f32]) -> (Vec<i8>, Vec<half::f16>) {
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / BLOCK);
    for block in values.chunks(BLOCK) {
        let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = half::f16::from_f32(max / 127.0);
        let s = scale.to_f32();
        scales.push(scale);
        q.extend(block.iter().map(|v| if s > 0.0 { (v / s).round().clamp(-127.0, 127.0) as i8 } else { 0 }));
    }
    (q, scales)
}

/// `i8 × scale`, block by block.
pub fn dequantize(values: &[i8], scales: &[f32]) -> Vec<f32> {
    values.chunks(BLOCK).zip(scales).flat_map(|(block, &s)| block.iter().map(move |&v| v as f32 * s)).collect()
}

/// The 8-bit values and f32 scales of a matrix `[rows, cols]` (a torch Linear weight
/// `[out, in]`, or several stacked along the rows), held on the host until it goes to the
/// device whole.
#[derive(Debug, Clone, Default)]
pub struct QuantMatrix {
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
}

impl QuantMatrix {
    /// Check the values' and scales' sizes against `[rows, cols]`.
    pub fn new(name: &str, values: Vec<i8>, scales: Vec<f32>, rows: usize, cols: usize) -> Result<Self, Error> {
        if !cols.is_multiple_of(BLOCK) || values.len() != rows * cols || scales.len() != rows * cols / BLOCK {
            return Err(Error::WeightsFile(format!(
                "tensor {name}: {} 8-bit values and {} scales do not make a [{rows}, {cols}] matrix in blocks of {BLOCK}",
                values.len(),
                scales.len()
            )));
        }
        if let Some(bad) = scales.iter().find(|s| !s.is_finite() || **s < 0.0) {
            return Err(Error::WeightsFile(format!("tensor {} has a scale of {bad}", scale_key(name))));
        }
        Ok(Self { values, scales, rows, cols })
    }

    /// Stack matrices of the same width (q, k and v into `qkv_proj`).
    pub fn stack(parts: Vec<Self>) -> Self {
        let mut all = Self { cols: parts.first().map_or(0, |p| p.cols), ..Self::default() };
        for p in parts {
            all.values.extend_from_slice(&p.values);
            all.scales.extend_from_slice(&p.scales);
            all.rows += p.rows;
        }
        all
    }

    /// Whether an 8-bit Linear weight for `device` stays as it is, on the host, for the layer's
    /// own 8-bit product: on the CPU in wasm, where that product is `kernels::simd128_q8`.
    pub fn stays_on_host(device: &Device) -> bool {
        cfg!(target_family = "wasm") && *device == Device::flex()
    }

    /// On the device in burn's Linear layout `[cols, rows]`. On a GPU, a burn quantized tensor
    /// (transposed as a view: the blocks stay along what the matmul sums over), which the matmul
    /// reads as it is. On the CPU, widened to f32 once: burn's CPU backend has no 8-bit matmul
    /// and would widen the weight on every call instead (ViT-B/32: 5.3 s an image against
    /// 0.24 s).
    pub fn to_device(self, device: &Device) -> Tensor<2> {
        if *device == Device::flex() {
            let values = dequantize(&self.values, &self.scales);
            let mut t = Vec::with_capacity(values.len());
            for c in 0..self.cols {
                t.extend((0..self.rows).map(|r| values[r * self.cols + c]));
            }
            return Tensor::<2>::from_data(TensorData::new(t, [self.cols, self.rows]), device);
        }
        let scheme = QuantScheme::default()
            .with_value(QuantValue::Q8S)
            .with_store(QuantStore::PackedU32(0))
            .per_block([1, BLOCK as u8], ScaleDtype::F32);
        let data = TensorData::quantized(self.values, [self.rows, self.cols], scheme, &self.scales, None);
        Tensor::<2>::from_data(data, device).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_round_trips_within_half_a_step() {
        let values: Vec<f32> = (0..96).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let (q, scales) = quantize(&values);
        let scales: Vec<f32> = scales.iter().map(|s| s.to_f32()).collect();
        let back = dequantize(&q, &scales);
        for (i, (a, b)) in values.iter().zip(&back).enumerate() {
            let s = scales[i / BLOCK];
            // Half a step, plus the clamp when the f16 scale rounded down.
            assert!((a - b).abs() <= 0.5 * s + 1e-3 * a.abs(), "{i}: {a} vs {b} (scale {s})");
        }
        assert!(q.iter().all(|&v| v != i8::MIN));
    }

    #[test]
    fn an_all_zero_block_has_scale_zero() {
        let (q, scales) = quantize(&[0.0; BLOCK]);
        assert!(q.iter().all(|&v| v == 0));
        assert_eq!(scales[0].to_f32(), 0.0);
    }
}
