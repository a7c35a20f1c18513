//! The text tower: token + position embeddings, a causal encoder, and pooling at the end token.
//!
//! Mirrors transformers' `CLIPTextTransformer` (`text_model.*` keys).
//!
//! Prompts are not run padded to a common length: each needs only its tokens up to its end
//! token (what follows cannot reach the pooled one through the causal mask), so they are
//! packed side by side into rows, each attending only within its own span ([`Packing`]).
//! The numbers are transformers' own; the work is that of the real tokens, which for a label
//! set of mixed lengths is well under that of the padded batch.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::embedding::TokenEmbedding;
use super::encoder::{AttentionMask, ClipEncoder, EncoderShape, Readout};
use crate::config::ClipTextConfig;
use crate::kernels;

/// A batch of token ids, padded to a common length (row-major `[batch, seq_len]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    pub ids: Vec<u32>,
    pub batch: usize,
    pub seq_len: usize,
}

impl TokenBatch {
    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.seq_len..(i + 1) * self.seq_len]
    }
}

#[derive(Module, Debug)]
pub struct ClipTextEmbeddings {
    pub token_embedding: TokenEmbedding,
    pub position_embedding: Embedding,
}

#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    pub embeddings: ClipTextEmbeddings,
    pub encoder: ClipEncoder,
    pub final_layer_norm: LayerNorm,
    eos_token_id: u32,
    layer_norm_eps: f64,
}

impl ClipTextConfig {
    pub fn init(&self, device: &Device) -> ClipTextTransformer {
        ClipTextTransformer {
            embeddings: ClipTextEmbeddings {
                token_embedding: TokenEmbedding::new(self.vocab_size, self.hidden_size, device),
                position_embedding: EmbeddingConfig::new(self.max_position_embeddings, self.hidden_size).init(device),
            },
            encoder: EncoderShape {
                hidden_size: self.hidden_size,
                intermediate_size: self.intermediate_size,
                num_hidden_layers: self.num_hidden_layers,
                num_attention_heads: self.num_attention_heads,
                layer_norm_eps: self.layer_norm_eps,
                hidden_act: self.hidden_act,
            }
            .init(device),
            final_layer_norm: LayerNormConfig::new(self.hidden_size).with_epsilon(self.layer_norm_eps).init(device),
            eos_token_id: self.eos_token_id,
            layer_norm_eps: self.layer_norm_eps,
        }
    }
}

/// The position whose hidden state represents the sequence, exactly as transformers picks it.
///
/// Configs with `eos_token_id == 2` (the original OpenAI ones) predate transformers PR #24773
/// and pool at the argmax of the ids (the end token has the largest id); newer ones pool at the
/// first `eos_token_id`. Padding after the end token cannot change either choice.
pub fn pooled_position(ids: &[u32], eos_token_id: u32) -> usize {
    if eos_token_id == 2 {
        // torch.argmax returns the first maximal index.
        let max = ids.iter().copied().max().unwrap_or(0);
        ids.iter().position(|&t| t == max).unwrap_or(0)
    } else {
        ids.iter().position(|&t| t == eos_token_id).unwrap_or(0)
    }
}

impl ClipTextTransformer {
    /// Pooled output `[batch, hidden]` (transformers' `pooler_output`).
    pub fn forward(&self, tokens: &TokenBatch) -> Tensor<2> {
        let device = self.final_layer_norm.gamma.device();
        let hidden = self.final_layer_norm.gamma.dims()[0];
        if tokens.batch == 0 {
            return Tensor::zeros([0, hidden], &device);
        }
        let pack = Packing::new(tokens, self.eos_token_id);
        let (rows, width, per_row) = (pack.rows, pack.width, pack.per_row);
        // Every upload first: an upload after queued work costs the GPU a submit.
        let ints =
            |values: Vec<i64>, shape: [usize; 2]| Tensor::<2, Int>::from_data(TensorData::new(values, shape), &device);
        let positions = ints(pack.positions, [rows, width]);
        let mask = AttentionMask::new(&pack.visible, [rows, width, width], &device);
        let readout = Readout {
            index: Tensor::from_data(TensorData::new(pack.read, [rows * per_row]), &device),
            per_row,
            mask: Some(AttentionMask::new(&pack.read_visible, [rows, per_row, width], &device)),
        };
        let order = Tensor::<1, Int>::from_data(TensorData::new(pack.order, [tokens.batch]), &device);
        let tokens = self.embeddings.token_embedding.lookup(pack.ids, [rows, width], &device);
        let x = tokens + self.embeddings.position_embedding.forward(positions);
        let read = self.encoder.forward(x, Some(&mask), &readout).reshape([rows * per_row, hidden]);
        kernels::layer_norm(read.select(0, order), &self.final_layer_norm, self.layer_norm_eps)
    }
}

/// About how many tokens a packed row holds (at least the longest prompt). Attention costs
/// each token a dot product per token of its row: a few percent of its Linear layers' work at
/// this length.
const PACKED_ROW: usize = 64;

/// Prompts packed into rows of nearly equal length: each prompt's tokens up to its
/// pooled (end) token, at positions 0.. of its own, seeing only the earlier tokens of its own
/// span. A row's unused tail is filled with tokens that see only themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Packing {
    pub rows: usize,
    pub width: usize,
    /// Token and position ids, `[rows, width]`.
    pub ids: Vec<i64>,
    pub positions: Vec<i64>,
    /// Whether query token i may see key token j, `[rows, width, width]`.
    pub visible: Vec<bool>,
    /// Pooled tokens per row (rows with fewer repeat their first token).
    pub per_row: usize,
    /// The pooled tokens, flat indices into `[rows * width]`, `[rows, per_row]`.
    pub read: Vec<i64>,
    /// `visible`'s rows for those tokens, `[rows, per_row, width]`.
    pub read_visible: Vec<bool>,
    /// Prompt i's place in `read`.
    pub order: Vec<i64>,
}

impl Packing {
    pub fn new(tokens: &TokenBatch, eos_token_id: u32) -> Self {
        let lens: Vec<usize> = (0..tokens.batch).map(|i| pooled_position(tokens.row(i), eos_token_id) + 1).collect();
        // As many rows as the tokens need at PACKED_ROW (or the longest prompt) each; then the
        // longest prompt first into the emptiest row, so rows end up nearly equal: every row is
        // as wide as the widest.
        let row = lens.iter().copied().max().unwrap_or(1).max(PACKED_ROW);
        let total: usize = lens.iter().sum();
        let mut rows: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); total.div_ceil(row).max(1)]; // (tokens, prompts)
        let mut by_length: Vec<usize> = (0..tokens.batch).collect();
        by_length.sort_by_key(|&i| std::cmp::Reverse(lens[i]));
        for i in by_length {
            let emptiest = rows.iter_mut().min_by_key(|(used, _)| *used).expect("at least one row");
            emptiest.0 += lens[i];
            emptiest.1.push(i);
        }
        let width = rows.iter().map(|(used, _)| *used).max().unwrap_or(1);
        let per_row = rows.iter().map(|(_, prompts)| prompts.len()).max().unwrap_or(1);
        let n = rows.len();
        let mut pack = Packing {
            rows: n,
            width,
            ids: vec![0; n * width],
            positions: vec![0; n * width],
            visible: vec![false; n * width * width],
            per_row,
            read: vec![0; n * per_row],
            read_visible: vec![false; n * per_row * width],
            order: vec![0; tokens.batch],
        };
        for (r, (_, prompts)) in rows.iter().enumerate() {
            // The span each token belongs to: its prompt, or (in the tail) itself alone.
            let mut span: Vec<usize> = (0..width).map(|t| tokens.batch + t).collect();
            let mut start = 0;
            for (p, &i) in prompts.iter().enumerate() {
                for (t, &id) in tokens.row(i)[..lens[i]].iter().enumerate() {
                    pack.ids[r * width + start + t] = i64::from(id);
                    pack.positions[r * width + start + t] = t as i64;
                    span[start + t] = i;
                }
                pack.read[r * per_row + p] = (r * width + start + lens[i] - 1) as i64;
                pack.order[i] = (r * per_row + p) as i64;
                start += lens[i];
            }
            for p in prompts.len()..per_row {
                pack.read[r * per_row + p] = (r * width) as i64;
            }
            for q in 0..width {
                for k in 0..=q {
                    pack.visible[(r * width + q) * width + k] = span[q] == span[k];
                }
            }
            for p in 0..per_row {
                let q = pack.read[r * per_row + p] as usize - r * width;
                let from = (r * width + q) * width;
                let to = (r * per_row + p) * width;
                pack.read_visible[to..to + width].copy_from_slice(&pack.visible[from..from + width]);
            }
        }
        pack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: &[&[u32]]) -> TokenBatch {
        let seq_len = rows.iter().map(|r| r.len()).max().unwrap();
        let mut ids = Vec::new();
        for r in rows {
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(0, seq_len - r.len()));
        }
        TokenBatch { ids, batch: rows.len(), seq_len }
    }

    #[test]
    fn prompts_share_rows_and_see_only_their_own_earlier_tokens() {
        // OpenAI's eos_token_id 2: pooled at the largest id (the end token, 9 here).
        let tokens = batch(&[&[1, 5, 9, 0, 0], &[1, 6, 7, 8, 9], &[1, 9]]);
        let pack = Packing::new(&tokens, 2);
        assert_eq!((pack.rows, pack.width, pack.per_row), (1, 10, 3));
        // Longest first: prompt 1, then 0, then 2; the padding after each end token is dropped.
        assert_eq!(pack.ids, [1, 6, 7, 8, 9, 1, 5, 9, 1, 9]);
        assert_eq!(pack.positions, [0, 1, 2, 3, 4, 0, 1, 2, 0, 1]);
        assert_eq!(pack.read, [4, 7, 9]);
        assert_eq!(pack.order, [1, 0, 2]);
        let sees = |q: usize| (0..10).filter(|&k| pack.visible[q * 10 + k]).collect::<Vec<_>>();
        assert_eq!(sees(4), [0, 1, 2, 3, 4]);
        assert_eq!(sees(6), [5, 6]);
        assert_eq!(sees(9), [8, 9]);
        assert_eq!(&pack.read_visible[10..20], &pack.visible[70..80]);
    }

    #[test]
    fn a_full_row_starts_another_and_short_rows_repeat_a_token() {
        let long: Vec<u32> = (1..=69).chain([80]).collect();
        let tokens = batch(&[&long, &[1, 80], &[1, 3, 80]]);
        let pack = Packing::new(&tokens, 80);
        // Capacity 70: the long prompt fills a row; the two short ones share the next.
        assert_eq!((pack.rows, pack.width, pack.per_row), (2, 70, 2));
        assert_eq!(pack.read, [69, 0, 72, 74]);
        assert_eq!(pack.order, [0, 3, 2]);
        // The tail of row 1 sees only itself.
        let q = 70 + 10;
        assert_eq!((0..70).filter(|&k| pack.visible[q * 70 + k]).collect::<Vec<_>>(), [10]);
    }
}
