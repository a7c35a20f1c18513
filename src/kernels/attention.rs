//! Multi-head self-attention as one dispatch, read straight from the packed qkv projection.
//!
//! `qkv` is `qkv_proj`'s output, `[rows, tokens, 3 · hidden]`: q, k and v side by side, each
//! `heads × head_dim` wide. One workgroup takes up to [`QUERIES`] queries of one head of one
//! row, one query an invocation; keys and values go through workgroup memory a block of keys
//! at a time, and the softmax is the online one (a running maximum and sum, the partial output
//! rescaled when the maximum grows), so no score matrix is ever written. The output is written
//! with the heads merged, `[rows, queries, hidden]`, as `out_proj` reads it.
//!
//! The additive mask (`[rows, queries, tokens]`, 0 or -∞) is what the text tower brings
//! (causal, and packed prompts seeing only their own span). Scores are clamped at
//! [`HIDDEN`] rather than carried as -∞ (WGSL may assume there are no infinities): while every
//! key so far is hidden they weigh like equals, and the first visible key's rescaling
//! (`exp(HIDDEN - s)`, exactly 0) wipes them, so a query that sees at least one key (every
//! query sees itself) gets exactly the visible keys' softmax.
//!
//! With `readout`, the queries are only the tokens `index` names (flat positions in
//! `[rows · tokens]`, `queries` per row): the last layer, computed only where it is read.

use burn::backend::cubecl::dtype_to_storage_type;
use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::{cast, into_contiguous};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// Queries per workgroup (one invocation each): an image's 50 tokens in one.
const QUERIES: usize = 64;
/// Workgroup memory for one block of keys and values, in f32 values (8 KB).
const STAGED: usize = 2048;
/// A hidden or absent key's score.
const HIDDEN: f32 = -1.0e30;

/// Keys staged at a time: as many as fit [`STAGED`] with their values, at most 16.
pub fn key_block(head_dim: usize) -> usize {
    (STAGED / 2 / head_dim).clamp(1, 16)
}

#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn attention_kernel<F: Float>(
    qkv: &Tensor<F>,
    mask: &Tensor<F>,
    index: &Tensor<u32>,
    out: &mut Tensor<F>,
    scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] key_block: usize,
    #[comptime] masked: bool,
    #[comptime] readout: bool,
    #[define(F)] _dtype: ElemType,
) {
    let tokens = qkv.shape(1);
    let width = qkv.shape(2);
    let hidden = out.shape(2);
    let queries = out.shape(1);
    let head = CUBE_POS_Y as usize;
    let row = CUBE_POS_Z as usize;
    let query = CUBE_POS_X as usize * QUERIES + UNIT_POS_X as usize;
    let active = query < queries;

    let mut q = Array::<f32>::new(head_dim);
    let mut acc = Array::<f32>::new(head_dim);
    for d in 0..head_dim {
        q[d] = 0.0f32;
        acc[d] = 0.0f32;
    }
    if active {
        let mut token = query;
        if comptime!(readout) {
            token = usize::cast_from(index[row * queries + query]) - row * tokens;
        }
        let base = (row * tokens + token) * width + head * head_dim;
        for d in 0..head_dim {
            q[d] = f32::cast_from(qkv[base + d]);
        }
    }

    let mut ks = Shared::<[f32]>::new_slice(comptime!(key_block * head_dim));
    let mut vs = Shared::<[f32]>::new_slice(comptime!(key_block * head_dim));
    let hidden_score = f32::new(HIDDEN);
    let mut running_max = hidden_score;
    let mut sum = 0.0f32;
    let staged = comptime!(key_block * head_dim);
    let mut k0 = 0usize;
    while k0 < tokens {
        #[unroll]
        for l in 0..comptime!(staged.div_ceil(QUERIES)) {
            let idx = UNIT_POS_X as usize + l * QUERIES;
            if idx < staged {
                let j = idx / head_dim;
                let d = idx % head_dim;
                let key = k0 + j;
                let mut kv = 0.0f32;
                let mut vv = 0.0f32;
                if key < tokens {
                    let base = (row * tokens + key) * width + head * head_dim + d;
                    kv = f32::cast_from(qkv[base + hidden]);
                    vv = f32::cast_from(qkv[base + 2 * hidden]);
                }
                ks[idx] = kv;
                vs[idx] = vv;
            }
        }
        sync_cube();

        if active {
            // Scores for the block: the dimensions in a loop, the keys unrolled (registers).
            let mut scores = Array::<f32>::new(key_block);
            #[unroll]
            for j in 0..key_block {
                scores[j] = 0.0f32;
            }
            for d in 0..head_dim {
                let qd = q[d];
                #[unroll]
                for j in 0..key_block {
                    scores[j] += qd * ks[j * head_dim + d];
                }
            }
            let mut block_max = running_max;
            #[unroll]
            for j in 0..key_block {
                let key = k0 + j;
                let mut s = scores[j] * scale;
                if key < tokens {
                    if comptime!(masked) {
                        s += f32::cast_from(mask[(row * queries + query) * tokens + key]);
                    }
                } else {
                    s = hidden_score;
                }
                if s < hidden_score {
                    s = hidden_score;
                }
                scores[j] = s;
                if s > block_max {
                    block_max = s;
                }
            }
            let correction = (running_max - block_max).exp();
            sum *= correction;
            #[unroll]
            for j in 0..key_block {
                let p = (scores[j] - block_max).exp();
                scores[j] = p;
                sum += p;
            }
            for d in 0..head_dim {
                let mut a = acc[d] * correction;
                #[unroll]
                for j in 0..key_block {
                    a += scores[j] * vs[j * head_dim + d];
                }
                acc[d] = a;
            }
            running_max = block_max;
        }
        sync_cube();
        k0 += key_block;
    }

    if active {
        let base = (row * queries + query) * hidden + head * head_dim;
        for d in 0..head_dim {
            out[base + d] = F::cast_from(acc[d] / sum);
        }
    }
}

/// Attention over `qkv` `[rows, tokens, 3 · hidden]` with `heads` heads; `mask`
/// `[rows, queries, tokens]` when given, `index` (`queries` per row) when only some tokens
/// are queries. `[rows, queries, hidden]`.
pub fn attention(qkv: CubeTensor, mask: Option<CubeTensor>, index: Option<CubeTensor>, heads: usize) -> CubeTensor {
    let qkv = into_contiguous(qkv);
    let [rows, tokens, width] = qkv.meta.shape().dims::<3>();
    let hidden = width / 3;
    let head_dim = hidden / heads;
    let queries = match &index {
        Some(index) => index.meta.shape().num_elements() / rows.max(1),
        None => tokens,
    };
    let client = qkv.client.clone();
    let out = empty_device_contiguous_dtype(
        client.clone(),
        qkv.device.clone(),
        Shape::new([rows, queries, hidden]),
        qkv.dtype,
    );
    if rows == 0 || queries == 0 {
        return out;
    }
    let (masked, readout) = (mask.is_some(), index.is_some());
    let mask = mask.map(into_contiguous).unwrap_or_else(|| qkv.clone());
    let index = match index {
        Some(index) if index.dtype == DType::U32 || index.dtype == DType::I32 => into_contiguous(index),
        Some(index) => cast(into_contiguous(index), DType::U32),
        None => qkv.clone(),
    };
    let cube_count = CubeCount::Static(queries.div_ceil(QUERIES) as u32, heads as u32, rows as u32);
    let dtype = dtype_to_storage_type(qkv.dtype);
    let scale = (head_dim as f64).powf(-0.5) as f32;
    // SAFETY: every read and write is guarded by the shapes of the tensors passed.
    unsafe {
        attention_kernel::launch_unchecked(
            &client,
            cube_count,
            CubeDim::new_1d(QUERIES as u32),
            qkv.into_tensor_arg(),
            mask.into_tensor_arg(),
            index.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            scale,
            head_dim,
            key_block(head_dim),
            masked,
            readout,
            dtype,
        )
    };
    out
}
