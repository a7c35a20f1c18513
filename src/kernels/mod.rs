//! webclip's own GPU kernels for the transformer block, and the reference they are held to.
//!
//! The model calls a Linear, an attention and a LayerNorm through the functions here; which
//! kernel runs is decided here, by the device:
//!
//! - on a cubecl device (burn's wgpu backend: Vulkan, Metal, WebGPU) the kernels of this
//!   module, written in CubeCL and wired into burn through its public extension point, a
//!   [`backend_extension`] trait ([`ClipKernels`]): one dispatch for a Linear with its bias,
//!   activation and residual ([`linear`](mod@linear)), one for a layer's attention read straight
//!   from the packed qkv projection ([`attention`](mod@attention)), one for a LayerNorm
//!   ([`layer_norm`](mod@layer_norm)). 8-bit Linear weights are read by the same `linear`,
//!   dequantized as staged. With burn's fusion on, each is a custom operation in the fusion
//!   stream (opaque to fusion, which still merges the element-wise work between them);
//! - on the CPU, Linear layers through rten-gemm with their weights packed at load
//!   ([`cpu`]), and burn's own ops for the rest ([`reference`]): flex's fused CPU attention
//!   and its LayerNorm.
//!
//! Every kernel is tested against [`reference`] on the same device at awkward shapes
//! (`tests/kernels.rs`), and the whole model against transformers (`tests/parity.rs`).

#[cfg(feature = "webgpu")]
pub mod attention;
pub mod cpu;
pub mod cpu_attention;
mod epilogue;
#[cfg(feature = "webgpu")]
mod extension;
#[cfg(feature = "webgpu")]
pub mod layer_norm;
#[cfg(feature = "webgpu")]
pub mod linear;
mod parallel;
#[cfg(target_family = "wasm")]
pub mod simd128;
#[cfg(target_family = "wasm")]
pub mod simd128_q8;

#[cfg(feature = "webgpu")]
use burn::backend::Dispatch;
use burn::nn::LayerNorm;
use burn::nn::conv::Conv2d;
#[cfg(feature = "webgpu")]
use burn::tensor::DType;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::model::linear::Linear;

pub use epilogue::{Activation, Epilogue};
#[cfg(feature = "webgpu")]
pub use extension::ClipKernels;
pub use parallel::on_pool;

/// Whether tensors on `device` run webclip's kernels: every device but burn's CPU backends
/// (and none in a build without the `webgpu` feature, which has no other).
pub fn on_gpu(device: &Device) -> bool {
    cfg!(feature = "webgpu") && *device != Device::flex()
}

/// Which of webclip's kernels run: all of them, unless (natively, for measuring what each one
/// does) `WEBCLIP_KERNELS` lists some of `linear`, `attention`, `layer_norm` (`none`: burn's
/// ops throughout). `linear` is the GPU's kernel and, on the CPU, the packed product.
pub(crate) fn uses(kernel: &str) -> bool {
    #[cfg(not(target_family = "wasm"))]
    {
        static CHOSEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        if let Some(list) = CHOSEN.get_or_init(|| std::env::var("WEBCLIP_KERNELS").ok()) {
            return list.split(',').any(|k| k.trim() == kernel);
        }
    }
    let _ = kernel;
    true
}

#[cfg(feature = "webgpu")]
fn float(t: Tensor<2>) -> burn::backend::DispatchTensor {
    t.into_dispatch()
}

/// A Linear's weight as the kernels read it.
#[cfg(feature = "webgpu")]
enum Weight {
    /// `[d_in, d_out]`, burn's Linear layout.
    Dense(Tensor<2>),
    /// 8-bit, `[d_out, d_in]` as stored (see [`crate::quant`]).
    Q8(Tensor<2>),
}

#[cfg(feature = "webgpu")]
fn weight(linear: &Linear) -> Weight {
    let w = linear.weight.val();
    match w.dtype() {
        DType::QFloat(_) => Weight::Q8(w.transpose()),
        _ => Weight::Dense(w),
    }
}

/// On the CPU, a Linear whose weight is packed ([`Linear::pack`]): rten-gemm's product, then
/// the activation and the residual over its output ([`cpu::PackedLinear::forward`]).
fn cpu_linear(
    x: Tensor<3>,
    packed: &cpu::PackedLinear,
    activation: Activation,
    residual: Option<Tensor<3>>,
) -> Tensor<3> {
    let [rows, tokens, _] = x.dims();
    let device = x.device();
    let x = x.into_data().convert::<f32>();
    let x = x.as_slice::<f32>().expect("f32 activations");
    let shape = [rows, tokens, packed.d_out()];
    if activation == Activation::Gelu {
        // erf's GELU is burn's; the CPU path has QuickGELU's only (CLIP's own activation).
        let out = Tensor::<3>::from_data(TensorData::new(packed.forward(x, Activation::None, None), shape), &device);
        let out = burn::tensor::activation::gelu(out);
        return residual.map_or(out.clone(), |r| out + r);
    }
    let residual = residual.map(|r| r.into_data().convert::<f32>());
    let residual = residual.as_ref().map(|r| r.as_slice::<f32>().expect("an f32 residual"));
    Tensor::from_data(TensorData::new(packed.forward(x, activation, residual), shape), &device)
}

/// `act(x · W + b)` for a Linear, `x` `[rows, tokens, d_in]`.
pub fn linear(x: Tensor<3>, linear: &Linear, activation: Activation) -> Tensor<3> {
    if let Some(packed) = &linear.packed {
        return cpu_linear(x, packed, activation, None);
    }
    #[cfg(feature = "webgpu")]
    if let (true, Some(b)) = (on_gpu(&x.device()) && uses("linear"), linear.bias.as_ref()) {
        let [rows, tokens, d_in] = x.dims();
        let epilogue = Epilogue { bias: true, activation, residual: false }.code();
        let (x, b) = (float(x.reshape([rows * tokens, d_in])), b.val().into_dispatch());
        let out = match weight(linear) {
            Weight::Dense(w) => Dispatch::clip_linear(x, float(w), b, epilogue),
            Weight::Q8(w) => Dispatch::clip_linear_q8(x, float(w), b, epilogue),
        };
        let out = Tensor::<2>::from_dispatch(out);
        let d_out = out.dims()[1];
        return out.reshape([rows, tokens, d_out]);
    }
    reference::linear(x, linear, activation)
}

/// `x · W + b + residual`.
pub fn linear_residual(x: Tensor<3>, linear: &Linear, residual: Tensor<3>) -> Tensor<3> {
    if let Some(packed) = &linear.packed {
        return cpu_linear(x, packed, Activation::None, Some(residual));
    }
    #[cfg(feature = "webgpu")]
    if let (true, Some(b)) = (on_gpu(&x.device()) && uses("linear"), linear.bias.as_ref()) {
        let [rows, tokens, d_in] = x.dims();
        let d_out = residual.dims()[2];
        let (x, b) = (float(x.reshape([rows * tokens, d_in])), b.val().into_dispatch());
        let residual = residual.reshape([rows * tokens, d_out]).into_dispatch();
        let out = match weight(linear) {
            Weight::Dense(w) => Dispatch::clip_linear_residual(x, float(w), b, residual),
            Weight::Q8(w) => Dispatch::clip_linear_q8_residual(x, float(w), b, residual),
        };
        return Tensor::<2>::from_dispatch(out).reshape([rows, tokens, d_out]);
    }
    reference::linear(x, linear, Activation::None) + residual
}

/// The patch embedding, `[batch, patches, hidden]` (patches row by row) from pixels `[batch,
/// channels, height, width]`: `conv`, a bias-free convolution whose stride is its kernel. On
/// the CPU, with its weight `packed` (`ClipVisionEmbeddings::pack`), each patch's pixels are
/// gathered into a row, in the weight's order (channel, then row, then column), and the rows
/// go through the packed product.
pub fn patch_embedding(pixels: Tensor<4>, conv: &Conv2d, packed: Option<&cpu::PackedLinear>) -> Tensor<3> {
    let Some(packed) = packed else {
        let patches = conv.forward(pixels); // [batch, hidden, rows, columns]
        return patches.flatten::<3>(2, 3).swap_dims(1, 2);
    };
    let [batch, channels, height, width] = pixels.dims();
    let device = pixels.device();
    let [p, q] = conv.kernel_size;
    assert_eq!(channels * p * q, packed.d_in(), "{p} × {q} patches over {channels} channels");
    let (rows, columns) = (height / p, width / q);
    let data = pixels.into_data().convert::<f32>();
    let data = data.as_slice::<f32>().expect("f32 pixels");
    let mut x = Vec::with_capacity(batch * rows * columns * packed.d_in());
    for b in 0..batch {
        for r in 0..rows {
            for c in 0..columns {
                for ch in 0..channels {
                    let plane = &data[(b * channels + ch) * height * width..][..height * width];
                    for y in r * p..(r + 1) * p {
                        x.extend_from_slice(&plane[y * width + c * q..][..q]);
                    }
                }
            }
        }
    }
    let out = packed.forward(&x, Activation::None, None);
    Tensor::from_data(TensorData::new(out, [batch, rows * columns, packed.d_out()]), &device)
}

/// On the CPU, `conv`'s weight (`[hidden, channels, p, q]`) as a Linear's (`[channels · p · q,
/// hidden]`), packed for [`patch_embedding`]; `conv`'s own weight is left empty. Elsewhere, and
/// for weights the CPU's product does not take, `None`, and `conv` is unchanged.
pub fn pack_patch_embedding(conv: &mut Conv2d) -> Option<cpu::PackedLinear> {
    let weight = conv.weight.val();
    let device = weight.device();
    if on_gpu(&device) || weight.dtype() != burn::tensor::DType::F32 || !uses("linear") {
        return None;
    }
    let [hidden, channels, p, q] = weight.dims();
    let d_in = channels * p * q;
    let values = weight.reshape([hidden, d_in]).transpose().into_data().convert::<f32>();
    let values = values.try_into_vec::<f32>().expect("an f32 weight");
    conv.weight = burn::module::Param::initialized(conv.weight.id, Tensor::empty([hidden, channels, 0, 0], &device));
    Some(cpu::PackedLinear::new(values, d_in, hidden, None))
}

/// Which keys each query may see, `[rows, 1, queries, keys]`, in the form the device's
/// attention wants: a bool mask (true = hidden) for flex's fused kernel, 0 / -∞ added to the
/// scores on the GPU. Built once per forward pass and shared by every layer.
#[derive(Debug, Clone)]
pub enum AttentionMask {
    Hidden(Tensor<4, Bool>),
    Additive(Tensor<4>),
}

impl AttentionMask {
    /// From `visible`, row-major `[rows, queries, keys]`. Every query must see at least one
    /// key (itself), or softmax would divide by zero.
    pub fn new(visible: &[bool], [rows, queries, keys]: [usize; 3], device: &Device) -> Self {
        debug_assert_eq!(visible.len(), rows * queries * keys);
        let shape = [rows, 1, queries, keys];
        if on_gpu(device) {
            let values: Vec<f32> = visible.iter().map(|&v| if v { 0.0 } else { f32::NEG_INFINITY }).collect();
            Self::Additive(Tensor::from_data(TensorData::new(values, shape), device))
        } else {
            let hidden: Vec<bool> = visible.iter().map(|&v| !v).collect();
            Self::Hidden(Tensor::from_data(TensorData::new(hidden, shape), device))
        }
    }
}

/// Self-attention with `heads` heads over packed `qkv` `[rows, tokens, 3 · hidden]`: every
/// token a query, or only those `index` names (flat positions in `[rows · tokens]`, the same
/// count per row). `[rows, queries, hidden]`, heads merged.
pub fn attention(
    qkv: Tensor<3>,
    heads: usize,
    mask: Option<&AttentionMask>,
    index: Option<Tensor<1, Int>>,
) -> Tensor<3> {
    #[cfg(feature = "webgpu")]
    if on_gpu(&qkv.device()) && uses("attention") {
        let mask = match mask {
            Some(AttentionMask::Additive(mask)) => {
                let [rows, _, queries, keys] = mask.dims();
                Some(mask.clone().reshape([rows, queries, keys]))
            }
            None => None,
            Some(AttentionMask::Hidden(_)) => return reference::attention(qkv, heads, mask, index),
        };
        let qkv = qkv.into_dispatch();
        let out = match (mask, index) {
            (None, None) => Dispatch::clip_attention(qkv, heads),
            (Some(mask), None) => Dispatch::clip_attention_masked(qkv, mask.into_dispatch(), heads),
            (None, Some(index)) => Dispatch::clip_attention_readout(qkv, index.into_dispatch(), heads),
            (Some(mask), Some(index)) => {
                Dispatch::clip_attention_readout_masked(qkv, mask.into_dispatch(), index.into_dispatch(), heads)
            }
        };
        return Tensor::from_dispatch(out);
    }
    // In wasm, webclip's own CPU attention (natively flex's, which rayon spreads over every core).
    #[cfg(target_family = "wasm")]
    if !on_gpu(&qkv.device()) && uses("attention") && !matches!(mask, Some(AttentionMask::Additive(_))) {
        return cpu_attention(qkv, heads, mask, index);
    }
    reference::attention(qkv, heads, mask, index)
}

/// As [`attention`], by [`cpu_attention::attention`] on the host: what the CPU runs in wasm.
/// The mask must be a [`AttentionMask::Hidden`] one (the CPU's).
pub fn cpu_attention(
    qkv: Tensor<3>,
    heads: usize,
    mask: Option<&AttentionMask>,
    index: Option<Tensor<1, Int>>,
) -> Tensor<3> {
    let [rows, tokens, width] = qkv.dims();
    let device = qkv.device();
    let hidden_keys = mask.map(|m| match m {
        AttentionMask::Hidden(m) => {
            m.clone().into_data().convert::<bool>().try_into_vec::<bool>().expect("a bool mask")
        }
        AttentionMask::Additive(_) => panic!("the CPU's attention takes a mask of hidden keys"),
    });
    let index = index.map(|i| {
        let i = i.into_data().convert::<i64>().try_into_vec::<i64>().expect("int indices");
        i.into_iter().map(|v| v as usize).collect::<Vec<_>>()
    });
    let qkv = qkv.into_data().convert::<f32>();
    let qkv = qkv.as_slice::<f32>().expect("f32 activations");
    let queries = index.as_ref().map_or(tokens, |i| i.len() / rows.max(1));
    let out = cpu_attention::attention(qkv, [rows, tokens, width], heads, hidden_keys.as_deref(), index.as_deref());
    Tensor::from_data(TensorData::new(out, [rows, queries, width / 3]), &device)
}

/// LayerNorm along the last dimension of `x` `[rows, tokens, width]`.
pub fn layer_norm<const D: usize>(x: Tensor<D>, norm: &LayerNorm, eps: f64) -> Tensor<D> {
    #[cfg(feature = "webgpu")]
    if let (true, Some(beta)) = (on_gpu(&x.device()) && uses("layer_norm"), norm.beta.as_ref()) {
        let dims = x.dims();
        let width = dims[D - 1];
        let rows = x.shape().num_elements() / width.max(1);
        let out = Dispatch::clip_layer_norm(
            float(x.reshape([rows, width])),
            norm.gamma.val().into_dispatch(),
            beta.val().into_dispatch(),
            eps,
        );
        return Tensor::<2>::from_dispatch(out).reshape(dims);
    }
    let _ = eps;
    norm.forward(x)
}

/// The same operations in burn's own ops: what runs on the CPU and for 8-bit weights, and what
/// the kernels are tested against.
pub mod reference {
    use burn::tensor::activation::{gelu, sigmoid, softmax};
    use burn::tensor::module::{attention as fused_attention, linear as burn_linear};
    use burn::tensor::ops::AttentionModuleOptions;
    use burn::tensor::{Device, Int, Tensor};

    use super::{Activation, AttentionMask};
    use crate::model::linear::Linear;

    /// burn's Linear product: the weight as stored (not packed; see [`Linear::pack`]).
    pub fn linear(x: Tensor<3>, linear: &Linear, activation: Activation) -> Tensor<3> {
        debug_assert!(linear.packed.is_none(), "a packed Linear's weight is in its packed form");
        let h = burn_linear(x, linear.weight.val(), linear.bias.as_ref().map(|b| b.val()));
        match activation {
            Activation::None => h,
            Activation::QuickGelu => h.clone() * sigmoid(h * 1.702),
            Activation::Gelu => gelu(h),
        }
    }

    /// As [`super::attention`], in burn's attention ops.
    pub fn attention(
        qkv: Tensor<3>,
        heads: usize,
        mask: Option<&AttentionMask>,
        index: Option<Tensor<1, Int>>,
    ) -> Tensor<3> {
        let [rows, tokens, width] = qkv.dims();
        let hidden = width / 3;
        let head_dim = hidden / heads;
        let qkv = qkv.reshape([rows, tokens, 3, heads, head_dim]).permute([2, 0, 3, 1, 4]);
        let mut parts = qkv.chunk(3, 0).into_iter().map(|t| t.squeeze_dim::<4>(0));
        let (q, k, v) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let (q, queries) = match index {
            Some(index) => {
                let queries = index.dims()[0] / rows.max(1);
                let q = q.swap_dims(1, 2).reshape([rows * tokens, hidden]).select(0, index);
                (q.reshape([rows, queries, heads, head_dim]).swap_dims(1, 2), queries)
            }
            None => (q, tokens),
        };
        let out = match mask {
            // flex computes attention in one fused CPU kernel.
            None if q.device() == Device::flex() => {
                fused_attention(q, k, v, None, None, AttentionModuleOptions::default())
            }
            Some(AttentionMask::Hidden(mask)) => {
                fused_attention(q, k, v, Some(mask.clone()), None, AttentionModuleOptions::default())
            }
            // On the GPU, burn's attention without autotune is a decomposition that also
            // guards against fully masked rows; spelled out, it is shorter and fusable.
            mask => {
                let scores = q.matmul(k.swap_dims(2, 3)) * (head_dim as f64).powf(-0.5);
                let scores = match mask {
                    Some(AttentionMask::Additive(mask)) => scores + mask.clone(),
                    _ => scores,
                };
                softmax(scores, 3).matmul(v)
            }
        };
        out.swap_dims(1, 2).reshape([rows, queries, hidden])
    }
}
