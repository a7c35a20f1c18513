//! The transformer encoder both towers share: pre-LayerNorm blocks of self-attention and an MLP.
//!
//! Mirrors transformers' `CLIPEncoder` / `CLIPEncoderLayer` / `CLIPAttention` / `CLIPMLP`; the
//! field names are the checkpoint's key names (`layers.3.self_attn.out_proj.weight`, ...; q, k
//! and v are one `qkv_proj`, filled from the checkpoint's three). The two
//! towers differ only in the causal mask, which the text tower asks for.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::Activation;

/// Shapes of one encoder stack.
#[derive(Debug, Clone, Copy)]
pub struct EncoderShape {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: Activation,
}

impl EncoderShape {
    /// Build the (lazily initialised) stack; weights are filled in by [`crate::weights`].
    pub fn init(&self, device: &Device) -> ClipEncoder {
        ClipEncoder { layers: (0..self.num_hidden_layers).map(|_| self.init_layer(device)).collect() }
    }

    fn init_layer(&self, device: &Device) -> ClipEncoderLayer {
        let d = self.hidden_size;
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let norm = || LayerNormConfig::new(d).with_epsilon(self.layer_norm_eps).init(device);
        ClipEncoderLayer {
            self_attn: ClipAttention {
                qkv_proj: linear(d, 3 * d),
                out_proj: linear(d, d),
                num_heads: self.num_attention_heads,
            },
            layer_norm1: norm(),
            mlp: ClipMlp {
                fc1: linear(d, self.intermediate_size),
                fc2: linear(self.intermediate_size, d),
                quick_gelu: self.hidden_act == Activation::QuickGelu,
            },
            layer_norm2: norm(),
        }
    }
}

/// Multi-head self-attention. The checkpoint's `q_proj`, `k_proj` and `v_proj` are one
/// Linear here, `qkv_proj`, concatenated at load (see [`crate::weights`]): one matmul and one
/// bias add instead of three each.
#[derive(Module, Debug)]
pub struct ClipAttention {
    pub qkv_proj: Linear,
    pub out_proj: Linear,
    num_heads: usize,
}

impl ClipAttention {
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let [batch, tokens, hidden] = x.dims();
        let head_dim = hidden / self.num_heads;
        let device = x.device();
        // [batch, tokens, 3 · hidden] -> 3 × [batch, heads, tokens, head_dim]
        let qkv =
            self.qkv_proj.forward(x).reshape([batch, tokens, 3, self.num_heads, head_dim]).permute([2, 0, 3, 1, 4]);
        let mut qkv = qkv.chunk(3, 0).into_iter().map(|t| t.squeeze_dim::<4>(0));
        let (q, k, v) = (qkv.next().unwrap(), qkv.next().unwrap(), qkv.next().unwrap());
        // softmax(q kᵀ / √head_dim) v, the causal mask hiding later tokens from earlier ones.
        let out = if device == Device::flex() {
            // flex computes attention in one fused CPU kernel.
            let options = AttentionModuleOptions { scale: None, softcap: None, is_causal: causal };
            attention(q, k, v, None, None, options)
        } else {
            // On the GPU burn's attention is, without autotune, a decomposition that also
            // guards against fully masked rows (none here: every token sees itself) with two
            // clamps, 4 kernels a layer. Spelled out, it is that much shorter, the mask is
            // uploaded instead of built by kernels, and burn's fusion can merge its
            // element-wise steps.
            let scores = q.matmul(k.swap_dims(2, 3)) * (head_dim as f64).powf(-0.5);
            let scores = if causal { scores + causal_mask(tokens, &device) } else { scores };
            softmax(scores, 3).matmul(v)
        };
        self.out_proj.forward(out.swap_dims(1, 2).reshape([batch, tokens, hidden]))
    }
}

/// `[1, 1, n, n]`: 0 where a token may look (itself and earlier ones), -∞ above the diagonal.
fn causal_mask(n: usize, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..n * n).map(|i| if i % n > i / n { f32::NEG_INFINITY } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(values, [1, 1, n, n]), device)
}

/// fc1 → activation → fc2.
#[derive(Module, Debug)]
pub struct ClipMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    quick_gelu: bool,
}

impl ClipMlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc1.forward(x);
        let h = if self.quick_gelu { h.clone() * sigmoid(h * 1.702) } else { gelu(h) };
        self.fc2.forward(h)
    }
}

/// One pre-LayerNorm block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    pub self_attn: ClipAttention,
    pub layer_norm1: LayerNorm,
    pub mlp: ClipMlp,
    pub layer_norm2: LayerNorm,
}

impl ClipEncoderLayer {
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), causal);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

/// The stack of encoder layers.
#[derive(Module, Debug)]
pub struct ClipEncoder {
    pub layers: Vec<ClipEncoderLayer>,
}

impl ClipEncoder {
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        self.layers.iter().fold(x, |x, layer| layer.forward(x, causal))
    }
}
