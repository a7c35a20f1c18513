//! The text tower: token + position embeddings, a causal encoder, and pooling at the end token.
//!
//! Mirrors transformers' `CLIPTextTransformer` (`text_model.*` keys).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::encoder::{ClipEncoder, EncoderShape};
use crate::config::ClipTextConfig;

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
    pub token_embedding: Embedding,
    pub position_embedding: Embedding,
}

#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    pub embeddings: ClipTextEmbeddings,
    pub encoder: ClipEncoder,
    pub final_layer_norm: LayerNorm,
    eos_token_id: u32,
}

impl ClipTextConfig {
    pub fn init(&self, device: &Device) -> ClipTextTransformer {
        ClipTextTransformer {
            embeddings: ClipTextEmbeddings {
                token_embedding: EmbeddingConfig::new(self.vocab_size, self.hidden_size).init(device),
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
        let (batch, seq) = (tokens.batch, tokens.seq_len);
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(tokens.ids.iter().map(|&t| t as i64).collect::<Vec<_>>(), [batch, seq]),
            &device,
        );
        let tok = self.embeddings.token_embedding.forward(ids); // [batch, seq, hidden]
        // burn slices by one range per dimension: an array of one range is meant.
        #[allow(clippy::single_range_in_vec_init)]
        let pos = self.embeddings.position_embedding.weight.val().slice([0..seq]).unsqueeze::<3>(); // [1, seq, hidden]
        let hidden = self.encoder.forward(tok + pos, true);
        let hidden = self.final_layer_norm.forward(hidden);
        let width = hidden.dims()[2];
        // Gather row i's pooled position from the flattened [batch * seq, hidden].
        let rows: Vec<i64> =
            (0..batch).map(|i| (i * seq + pooled_position(tokens.row(i), self.eos_token_id)) as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [batch]), &device);
        hidden.reshape([batch * seq, width]).select(0, rows)
    }
}
