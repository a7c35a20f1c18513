//! transformers' `nn.Embedding` for the text tower's tokens: rows of a table looked up by id.
//!
//! The field is burn's `Embedding`'s (`weight` `[vocab, hidden]`), so the loaders fill it as
//! they fill that one. On the CPU in wasm an 8-bit table (`dtype=q8`) is kept in 8 bits instead
//! (the loader hands it over, [`TokenEmbedding::take_from`]) and only the rows looked up are
//! widened: ViT-B/32's is 49408 × 512, 101 MB in f32, 26 MB in 8 bits. The rows are
//! `i8 × scale` in f32, the very values the widened table holds, so the output is the same.

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::EmbeddingConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::quant::{BLOCK, QuantMatrix};
use crate::weights::HostWeights;

#[derive(Module, Debug)]
pub struct TokenEmbedding {
    pub weight: Param<Tensor<2>>,
    /// The table in 8 bits, when the loader kept it so.
    #[module(skip)]
    q8: Option<Arc<QuantMatrix>>,
}

impl TokenEmbedding {
    /// Lazily initialised, as burn's.
    pub fn new(vocab: usize, hidden: usize, device: &Device) -> Self {
        Self { weight: EmbeddingConfig::new(vocab, hidden).init(device).weight, q8: None }
    }

    /// The 8-bit table a loader kept for this layer, if any.
    pub(crate) fn take_from(&mut self, host: &mut HostWeights) {
        if let Some(matrix) = host.remove(&self.weight.id) {
            self.q8 = Some(Arc::new(matrix));
        }
    }

    /// How many values the 8-bit table holds (0 when the table is the module's tensor).
    pub fn held_values(&self) -> usize {
        self.q8.as_ref().map_or(0, |t| t.values.len())
    }

    /// The rows of `ids` (row-major `shape`), `[shape[0], shape[1], hidden]`. Ids come from the
    /// model's own tokenizer; one past an 8-bit table (a tokenizer that does not match the
    /// model) reads zeros rather than stopping the page.
    pub fn lookup(&self, ids: Vec<i64>, shape: [usize; 2], device: &Device) -> Tensor<3> {
        let Some(table) = &self.q8 else {
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, shape), device);
            return burn::tensor::module::embedding(self.weight.val(), ids);
        };
        let hidden = table.cols;
        let blocks = hidden / BLOCK;
        let mut out = Vec::with_capacity(ids.len() * hidden);
        for &id in &ids {
            let row = usize::try_from(id).ok().filter(|&r| r < table.rows);
            let Some(row) = row else {
                out.resize(out.len() + hidden, 0.0);
                continue;
            };
            let values = &table.values[row * hidden..(row + 1) * hidden];
            let scales = &table.scales[row * blocks..(row + 1) * blocks];
            out.extend(values.chunks_exact(BLOCK).zip(scales).flat_map(|(b, &s)| b.iter().map(move |&v| v as f32 * s)));
        }
        Tensor::from_data(TensorData::new(out, [shape[0], shape[1], hidden]), device)
    }
}
