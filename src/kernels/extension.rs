//! webclip's GPU kernels as operations of burn's backends, through burn's public extension
//! point (a [`backend_extension`] trait): implemented for cubecl's backend and, with fusion,
//! recorded as custom operations of the fusion stream.

use burn::backend::tensor::{FloatTensor, IntTensor, QuantizedTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::Shape;
use burn_cubecl::CubeBackend;

use super::{Activation, Epilogue, attention, layer_norm, linear};

/// Operations a backend runs as one kernel each (implemented for cubecl's backend; with
/// fusion, recorded as custom operations and run by it when the stream executes).
#[backend_extension(Cube: cfg(all()), Fusion: cfg(all()))]
pub trait ClipKernels: Backend {
    /// `act(x · w + bias)`, `x` `[M, K]`, `w` `[K, N]`; `epilogue` is an [`Epilogue::code`]
    /// without a residual.
    #[fusion(dtype = x, shape = linear_shape(x, weight))]
    fn clip_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        epilogue: u32,
    ) -> FloatTensor<Self>;

    /// `x · w + bias + residual`.
    #[fusion(dtype = x, shape = linear_shape(x, weight))]
    fn clip_linear_residual(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// [`Self::clip_linear`] with 8-bit weights: `weight` `[N, K]` (a torch Linear's layout),
    /// burn's `Q8S` in blocks of 32 along K.
    #[fusion(dtype = x, shape = linear_q8_shape(x, weight))]
    fn clip_linear_q8(
        x: FloatTensor<Self>,
        weight: QuantizedTensor<Self>,
        bias: FloatTensor<Self>,
        epilogue: u32,
    ) -> FloatTensor<Self>;

    /// [`Self::clip_linear_residual`] with 8-bit weights.
    #[fusion(dtype = x, shape = linear_q8_shape(x, weight))]
    fn clip_linear_q8_residual(
        x: FloatTensor<Self>,
        weight: QuantizedTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Attention over packed `qkv` `[rows, tokens, 3 · hidden]`, every token a query.
    #[fusion(dtype = qkv, shape = attention_shape(qkv, None))]
    fn clip_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self>;

    /// The same with an additive mask `[rows, tokens, tokens]`.
    #[fusion(dtype = qkv, shape = attention_shape(qkv, None))]
    fn clip_attention_masked(qkv: FloatTensor<Self>, mask: FloatTensor<Self>, heads: usize) -> FloatTensor<Self>;

    /// Queries only at `index` (flat positions in `[rows · tokens]`, the same count per row).
    #[fusion(dtype = qkv, shape = attention_shape(qkv, Some(index)))]
    fn clip_attention_readout(qkv: FloatTensor<Self>, index: IntTensor<Self>, heads: usize) -> FloatTensor<Self>;

    /// Queries at `index`, with a mask `[rows, queries, tokens]`.
    #[fusion(dtype = qkv, shape = attention_shape(qkv, Some(index)))]
    fn clip_attention_readout_masked(
        qkv: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        index: IntTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self>;

    /// LayerNorm of `x` `[rows, width]` along its rows.
    #[fusion(dtype = x, shape = x)]
    fn clip_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;
}

fn linear_shape(x: &Shape, weight: &Shape) -> Shape {
    Shape::new([x[0], weight[1]])
}

fn linear_q8_shape(x: &Shape, weight: &Shape) -> Shape {
    Shape::new([x[0], weight[0]])
}

fn attention_shape(qkv: &Shape, index: Option<&Shape>) -> Shape {
    let queries = index.map_or(qkv[1], |index| index.num_elements() / qkv[0].max(1));
    Shape::new([qkv[0], queries, qkv[2] / 3])
}

impl ClipKernels for CubeBackend {
    fn clip_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        epilogue: u32,
    ) -> FloatTensor<Self> {
        let residual = bias.clone();
        linear::linear(x, weight, bias, residual, Epilogue { residual: false, ..Epilogue::from_code(epilogue) })
    }

    fn clip_linear_residual(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let epilogue = Epilogue { bias: true, activation: Activation::None, residual: true };
        linear::linear(x, weight, bias, residual, epilogue)
    }

    fn clip_linear_q8(
        x: FloatTensor<Self>,
        weight: QuantizedTensor<Self>,
        bias: FloatTensor<Self>,
        epilogue: u32,
    ) -> FloatTensor<Self> {
        let residual = bias.clone();
        linear::linear_q8(x, weight, bias, residual, Epilogue { residual: false, ..Epilogue::from_code(epilogue) })
    }

    fn clip_linear_q8_residual(
        x: FloatTensor<Self>,
        weight: QuantizedTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let epilogue = Epilogue { bias: true, activation: Activation::None, residual: true };
        linear::linear_q8(x, weight, bias, residual, epilogue)
    }

    fn clip_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        attention::attention(qkv, None, None, heads)
    }

    fn clip_attention_masked(qkv: FloatTensor<Self>, mask: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        attention::attention(qkv, Some(mask), None, heads)
    }

    fn clip_attention_readout(qkv: FloatTensor<Self>, index: IntTensor<Self>, heads: usize) -> FloatTensor<Self> {
        attention::attention(qkv, None, Some(index), heads)
    }

    fn clip_attention_readout_masked(
        qkv: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        index: IntTensor<Self>,
        heads: usize,
    ) -> FloatTensor<Self> {
        attention::attention(qkv, Some(mask), Some(index), heads)
    }

    fn clip_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        layer_norm::layer_norm(x, gamma, beta, eps)
    }
}
