//! The vision tower: patch embedding, class token, positions, encoder, pooling at the class token.
//!
//! Mirrors transformers' `CLIPVisionTransformer` (`vision_model.*` keys, including the
//! checkpoint's own spelling `pre_layrnorm`).

use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Tensor};

use super::encoder::{ClipEncoder, EncoderShape, Readout};
use crate::config::ClipVisionConfig;
use crate::kernels::{self, cpu::PackedLinear};

#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings {
    pub class_embedding: Param<Tensor<1>>,
    /// A bias-free convolution with stride = kernel = patch size: one token per patch.
    pub patch_embedding: Conv2d,
    pub position_embedding: Embedding,
    /// On the CPU, `patch_embedding`'s weight as a Linear's, `[channels · patch², hidden]`,
    /// packed ([`Self::pack`]); shared by clones of the model.
    #[module(skip)]
    pub packed: Option<Arc<PackedLinear>>,
}

impl ClipVisionEmbeddings {
    /// On the CPU, the patch convolution's weight moved into the form the CPU's matrix product
    /// reads: a convolution whose stride is its kernel is a Linear over each patch's pixels, so
    /// it takes the packed product (and its threads) rather than burn's im2col and `gemm`,
    /// which packs the weight on every call (7% of an 8-bit image pass, 2026-12-03). As for a
    /// Linear ([`crate::model::linear::Linear::pack`]), the convolution's own weight is then
    /// left empty. Elsewhere, nothing changes.
    pub fn pack(&mut self) {
        if self.packed.is_none() {
            self.packed = kernels::pack_patch_embedding(&mut self.patch_embedding).map(Arc::new);
        }
    }
}

#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    pub embeddings: ClipVisionEmbeddings,
    pub pre_layrnorm: LayerNorm,
    pub encoder: ClipEncoder,
    pub post_layernorm: LayerNorm,
    layer_norm_eps: f64,
}

impl ClipVisionConfig {
    pub fn init(&self, device: &Device) -> ClipVisionTransformer {
        let d = self.hidden_size;
        let p = self.patch_size;
        let norm = || LayerNormConfig::new(d).with_epsilon(self.layer_norm_eps).init(device);
        ClipVisionTransformer {
            embeddings: ClipVisionEmbeddings {
                class_embedding: Initializer::Zeros.init([d], device),
                patch_embedding: Conv2dConfig::new([self.num_channels, d], [p, p])
                    .with_stride([p, p])
                    .with_bias(false)
                    .init(device),
                position_embedding: EmbeddingConfig::new(self.patches_per_side().pow(2) + 1, d).init(device),
                packed: None,
            },
            pre_layrnorm: norm(),
            encoder: EncoderShape {
                hidden_size: d,
                intermediate_size: self.intermediate_size,
                num_hidden_layers: self.num_hidden_layers,
                num_attention_heads: self.num_attention_heads,
                layer_norm_eps: self.layer_norm_eps,
                hidden_act: self.hidden_act,
            }
            .init(device),
            post_layernorm: norm(),
            layer_norm_eps: self.layer_norm_eps,
        }
    }
}

impl ClipVisionTransformer {
    /// Pooled output `[batch, hidden]` for normalized pixels `[batch, 3, size, size]`.
    pub fn forward(&self, pixels: Tensor<4>) -> Tensor<2> {
        let batch = pixels.dims()[0];
        // Read at the class token, which every token sees and which sees every token. Made
        // before any work is queued: an upload after queued work costs the GPU a submit.
        let tokens = self.embeddings.position_embedding.weight.dims()[0];
        let readout = Readout::position(0, batch, tokens, &pixels.device());
        let patches =
            kernels::patch_embedding(pixels, &self.embeddings.patch_embedding, self.embeddings.packed.as_deref());
        let hidden = patches.dims()[2]; // [batch, patches, hidden]
        let class = self.embeddings.class_embedding.val().reshape([1, 1, hidden]).expand([batch, 1, hidden]);
        let pos = self.embeddings.position_embedding.weight.val().unsqueeze::<3>(); // [1, 1 + patches, hidden]
        let x = Tensor::cat(vec![class, patches], 1) + pos;
        let eps = self.layer_norm_eps;
        let pooled = self.encoder.forward(kernels::layer_norm(x, &self.pre_layrnorm, eps), None, &readout);
        kernels::layer_norm(pooled.reshape([batch, hidden]), &self.post_layernorm, eps)
    }
}
