//! Self-attention on the CPU, read straight from the packed qkv projection.
//!
//! In the page, burn flex's attention was the largest piece of a pass left on one thread once
//! the products were spread over the pool: its head split and merge are copies
//! (`copy_2d_tiled`), its products go through `gemm` (which packs on every call) and its
//! softmax through libm's scalar `expf` (2026-12-03, `docs/cpu.md`). Here each (row, head)
//! is one task: its queries' scores against the row's keys (only the visible ones), a softmax
//! through [`super::cpu::exp`], and the weighted sum of the values, each written to its place
//! in the merged output. The tasks go over the threaded module's pool
//! ([`super::parallel::panels`]); the loops are written so that the compiler vectorizes them
//! (SIMD128 in wasm).

use super::cpu::exp;
use super::parallel::{Out, panels};

/// `[rows, queries, hidden]` (row-major) from `qkv` `[rows, tokens, 3 · hidden]`, `heads`
/// heads. The queries are every token of a row, or those `index` names (flat positions in
/// `[rows · tokens]`, `queries` per row, each within its own row). `hidden_keys`, if given,
/// `[rows, queries, tokens]`: true where a query may not see a key; every query must see one.
pub fn attention(
    qkv: &[f32],
    [rows, tokens, width]: [usize; 3],
    heads: usize,
    hidden_keys: Option<&[bool]>,
    index: Option<&[usize]>,
) -> Vec<f32> {
    let hidden = width / 3;
    let d = hidden / heads.max(1);
    assert!(
        qkv.len() == rows * tokens * width && d * heads == hidden && hidden * 3 == width,
        "qkv [{rows}, {tokens}, 3 · {heads} heads]"
    );
    let queries = index.map_or(tokens, |i| i.len() / rows.max(1));
    if let Some(index) = index {
        assert_eq!(index.len(), rows * queries, "{queries} queries per row");
        assert!(index.iter().enumerate().all(|(i, &t)| t / tokens == i / queries.max(1)), "each query within its row");
    }
    if let Some(mask) = hidden_keys {
        assert_eq!(mask.len(), rows * queries * tokens, "a mask [{rows}, {queries}, {tokens}]");
    }
    let scale = (d as f32).powf(-0.5);
    let mut out = vec![0.0; rows * queries * hidden];
    let at = Out(out.as_mut_ptr());
    panels(rows * heads, rows * heads * queries * tokens * d * 2, |tasks| {
        let at = at.ptr();
        let (mut scores, mut sum) = (vec![0f32; tokens], vec![0f32; d]);
        for task in tasks {
            let (r, h) = (task / heads, task % heads);
            let key = |j: usize| &qkv[(r * tokens + j) * width + hidden + h * d..][..d];
            let value = |j: usize| &qkv[(r * tokens + j) * width + 2 * hidden + h * d..][..d];
            for qi in 0..queries {
                let t = index.map_or(r * tokens + qi, |i| i[r * queries + qi]);
                let q = &qkv[t * width + h * d..][..d];
                let hidden_row = hidden_keys.map(|m| &m[(r * queries + qi) * tokens..][..tokens]);
                let seen = |j: usize| hidden_row.is_none_or(|m| !m[j]);
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = if seen(j) { dot(q, key(j)) * scale } else { f32::NEG_INFINITY };
                    max = max.max(*s);
                }
                // exp(-∞) is 0: the hidden keys drop out of the sums.
                let mut total = 0.0;
                for s in scores.iter_mut() {
                    *s = if *s == f32::NEG_INFINITY { 0.0 } else { exp(*s - max) };
                    total += *s;
                }
                sum.fill(0.0);
                for (j, &p) in scores.iter().enumerate() {
                    if p != 0.0 {
                        for (o, v) in sum.iter_mut().zip(value(j)) {
                            *o += p * v;
                        }
                    }
                }
                let inv = 1.0 / total;
                // SAFETY: `out` is [rows, queries, hidden]; this task alone writes head h's
                // columns of row r's queries.
                let dst = unsafe { std::slice::from_raw_parts_mut(at.add((r * queries + qi) * hidden + h * d), d) };
                for (o, s) in dst.iter_mut().zip(&sum) {
                    *o = s * inv;
                }
            }
        }
    });
    out
}

/// `a · b`, in 8 running sums (so the compiler keeps them in two vectors), then added pairwise.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}
