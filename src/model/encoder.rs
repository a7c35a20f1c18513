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
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

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
    /// Self-attention over every token: `[rows, tokens, hidden]` in and out.
    pub fn forward(&self, x: Tensor<3>, mask: Option<&AttentionMask>) -> Tensor<3> {
        let [rows, tokens, hidden] = x.dims();
        let (q, k, v) = self.qkv(x);
        let out = attend(q, k, v, mask);
        self.out_proj.forward(out.swap_dims(1, 2).reshape([rows, tokens, hidden]))
    }

    /// Self-attention for the rows `readout` reads only (`[rows, readout.per_row, hidden]`):
    /// every token's keys and values, but queries for those rows alone.
    pub fn forward_readout(&self, x: Tensor<3>, readout: &Readout) -> Tensor<3> {
        let [rows, tokens, hidden] = x.dims();
        let heads = self.num_heads;
        let (q, k, v) = self.qkv(x);
        let q = q.swap_dims(1, 2).reshape([rows * tokens, hidden]).select(0, readout.index.clone());
        let q = q.reshape([rows, readout.per_row, heads, hidden / heads]).swap_dims(1, 2);
        let out = attend(q, k, v, readout.mask.as_ref());
        self.out_proj.forward(out.swap_dims(1, 2).reshape([rows, readout.per_row, hidden]))
    }

    /// `[rows, tokens, hidden]` -> q, k, v, each `[rows, heads, tokens, head_dim]`.
    fn qkv(&self, x: Tensor<3>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [rows, tokens, hidden] = x.dims();
        let qkv = self.qkv_proj.forward(x).reshape([rows, tokens, 3, self.num_heads, hidden / self.num_heads]);
        let mut qkv = qkv.permute([2, 0, 3, 1, 4]).chunk(3, 0).into_iter().map(|t| t.squeeze_dim::<4>(0));
        (qkv.next().unwrap(), qkv.next().unwrap(), qkv.next().unwrap())
    }
}

/// softmax(q kᵀ / √head_dim) v, the mask hiding what a query may not see.
fn attend(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Option<&AttentionMask>) -> Tensor<4> {
    match mask {
        // flex computes attention in one fused CPU kernel.
        None if q.device() == Device::flex() => attention(q, k, v, None, None, AttentionModuleOptions::default()),
        Some(AttentionMask::Hidden(mask)) => {
            attention(q, k, v, Some(mask.clone()), None, AttentionModuleOptions::default())
        }
        // On the GPU burn's attention is, without autotune, a decomposition that also guards
        // against fully masked rows (there are none: every query sees at least itself) with
        // two clamps, 4 kernels a layer. Spelled out, it is that much shorter, the mask is
        // uploaded instead of built by kernels, and burn's fusion can merge its element-wise
        // steps.
        mask => {
            let head_dim = q.dims()[3];
            let scores = q.matmul(k.swap_dims(2, 3)) * (head_dim as f64).powf(-0.5);
            let scores = match mask {
                Some(AttentionMask::Additive(mask)) => scores + mask.clone(),
                _ => scores,
            };
            softmax(scores, 3).matmul(v)
        }
    }
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
        if *device == Device::flex() {
            let hidden: Vec<bool> = visible.iter().map(|&v| !v).collect();
            Self::Hidden(Tensor::from_data(TensorData::new(hidden, shape), device))
        } else {
            let values: Vec<f32> = visible.iter().map(|&v| if v { 0.0 } else { f32::NEG_INFINITY }).collect();
            Self::Additive(Tensor::from_data(TensorData::new(values, shape), device))
        }
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
    pub fn forward(&self, x: Tensor<3>, mask: Option<&AttentionMask>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), mask);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }

    /// The same block computed for the rows `readout` reads only: `[rows, per_row, hidden]`.
    pub fn forward_readout(&self, x: Tensor<3>, readout: &Readout) -> Tensor<3> {
        let [rows, tokens, hidden] = x.dims();
        let read = x.clone().reshape([rows * tokens, hidden]).select(0, readout.index.clone());
        let read = read.reshape([rows, readout.per_row, hidden]);
        let x = read + self.self_attn.forward_readout(self.layer_norm1.forward(x), readout);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
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
