//! The transformer encoder both towers share: pre-LayerNorm blocks of self-attention and an MLP.
//!
//! Mirrors transformers' `CLIPEncoder` / `CLIPEncoderLayer` / `CLIPAttention` / `CLIPMLP`; the
//! field names are the checkpoint's key names (`layers.3.self_attn.out_proj.weight`, ...; q, k
//! and v are one `qkv_proj`, filled from the checkpoint's three). The two towers differ only
//! in the attention mask, which the text tower brings (see [`AttentionMask`]).
//!
//! Both towers read their output at a few tokens only (the class token, each prompt's end
//! token), so the last layer computes only those rows ([`Readout`]): its keys and values need
//! every token, but its queries, output projection and MLP need only the rows that are read.
//! For ViT-B/32 that is a tenth of the vision tower's work, skipped without changing a result.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::linear::Linear;
use crate::config::Activation;
pub use crate::kernels::AttentionMask;
use crate::kernels::{self, Activation as Act};

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
        let linear = |i, o| Linear::new(i, o, true, device);
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
            layer_norm_eps: self.layer_norm_eps,
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
    /// Self-attention over every token, then `out_proj` with `residual` added:
    /// `[rows, tokens, hidden]` in and out.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&AttentionMask>, residual: Tensor<3>) -> Tensor<3> {
        let qkv = kernels::linear(x, &self.qkv_proj, Act::None);
        let out = kernels::attention(qkv, self.num_heads, mask, None);
        kernels::linear_residual(out, &self.out_proj, residual)
    }

    /// Self-attention for the rows `readout` reads only (`[rows, readout.per_row, hidden]`):
    /// every token's keys and values, but queries for those rows alone.
    pub fn forward_readout(&self, x: Tensor<3>, readout: &Readout, residual: Tensor<3>) -> Tensor<3> {
        let qkv = kernels::linear(x, &self.qkv_proj, Act::None);
        let out = kernels::attention(qkv, self.num_heads, readout.mask.as_ref(), Some(readout.index.clone()));
        kernels::linear_residual(out, &self.out_proj, residual)
    }
}

/// The tokens an encoder's output is read at: `per_row` of each row of `[rows, tokens]`
/// (rows with fewer repeat one of theirs), and what each of them may see.
#[derive(Debug, Clone)]
pub struct Readout {
    /// Flat indices into `[rows * tokens]`, `per_row` per row, row after row.
    pub index: Tensor<1, Int>,
    pub per_row: usize,
    /// `[rows, 1, per_row, tokens]`; `None` where every token sees every other.
    pub mask: Option<AttentionMask>,
}

impl Readout {
    /// Token `position` of every one of `rows` rows of `tokens`, nothing masked (the vision
    /// tower's class token).
    pub fn position(position: usize, rows: usize, tokens: usize, device: &Device) -> Self {
        let index: Vec<i64> = (0..rows).map(|r| (r * tokens + position) as i64).collect();
        Self { index: Tensor::from_data(TensorData::new(index, [rows]), device), per_row: 1, mask: None }
    }
}

/// fc1 → activation → fc2.
#[derive(Module, Debug)]
pub struct ClipMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    quick_gelu: bool,
}

impl ClipMlp {
    /// `fc2(act(fc1(x))) + residual`.
    pub fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        let act = if self.quick_gelu { Act::QuickGelu } else { Act::Gelu };
        kernels::linear_residual(kernels::linear(x, &self.fc1, act), &self.fc2, residual)
    }
}

/// One pre-LayerNorm block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))` (each residual
/// added by the Linear before it, see [`kernels::linear_residual`]).
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    pub self_attn: ClipAttention,
    pub layer_norm1: LayerNorm,
    pub mlp: ClipMlp,
    pub layer_norm2: LayerNorm,
    layer_norm_eps: f64,
}

impl ClipEncoderLayer {
    pub fn forward(&self, x: Tensor<3>, mask: Option<&AttentionMask>) -> Tensor<3> {
        let eps = self.layer_norm_eps;
        let x = self.self_attn.forward(kernels::layer_norm(x.clone(), &self.layer_norm1, eps), mask, x);
        self.mlp.forward(kernels::layer_norm(x.clone(), &self.layer_norm2, eps), x)
    }

    /// The same block computed for the rows `readout` reads only: `[rows, per_row, hidden]`.
    pub fn forward_readout(&self, x: Tensor<3>, readout: &Readout) -> Tensor<3> {
        let eps = self.layer_norm_eps;
        let [rows, tokens, hidden] = x.dims();
        let read = x.clone().reshape([rows * tokens, hidden]).select(0, readout.index.clone());
        let read = read.reshape([rows, readout.per_row, hidden]);
        let x = self.self_attn.forward_readout(kernels::layer_norm(x, &self.layer_norm1, eps), readout, read);
        self.mlp.forward(kernels::layer_norm(x.clone(), &self.layer_norm2, eps), x)
    }
}

/// The stack of encoder layers.
#[derive(Module, Debug)]
pub struct ClipEncoder {
    pub layers: Vec<ClipEncoderLayer>,
}

impl ClipEncoder {
    /// The last hidden state at the rows `readout` reads, `[rows, per_row, hidden]`; `mask`
    /// says which tokens each token may see (`None`: all).
    pub fn forward(&self, x: Tensor<3>, mask: Option<&AttentionMask>, readout: &Readout) -> Tensor<3> {
        match self.layers.split_last() {
            Some((last, layers)) => last.forward_readout(layers.iter().fold(x, |x, l| l.forward(x, mask)), readout),
            None => {
                let [rows, tokens, hidden] = x.dims();
                let read = x.reshape([rows * tokens, hidden]).select(0, readout.index.clone());
                read.reshape([rows, readout.per_row, hidden])
            }
        }
    }
}
