//! The CLIP model: two towers, their projections into the shared space, and the logit scale.
//!
//! Mirrors transformers' `CLIPModel`; every parameter sits under the key the Hugging Face
//! checkpoint uses, so reading this module tree and reading `model.safetensors` is the same act.

pub mod embedding;
pub mod encoder;
pub mod linear;
pub mod text;
pub mod vision;

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};

use crate::config::ClipConfig;
use linear::Linear;
pub use text::{ClipTextTransformer, TokenBatch, pooled_position};
pub use vision::ClipVisionTransformer;

#[derive(Module, Debug)]
pub struct ClipModel {
    pub text_model: ClipTextTransformer,
    pub vision_model: ClipVisionTransformer,
    pub visual_projection: Linear,
    pub text_projection: Linear,
    /// ln of the softmax temperature's inverse; stored as a scalar in the checkpoint.
    pub logit_scale: Param<Tensor<1>>,
}

impl ClipConfig {
    /// The model with lazily initialised parameters: nothing is allocated until the weights
    /// loader replaces each one (see [`crate::weights`]).
    pub fn init(&self, device: &Device) -> ClipModel {
        let projection = |d_in| Linear::new(d_in, self.projection_dim, false, device);
        ClipModel {
            text_model: self.text_config.init(device),
            vision_model: self.vision_config.init(device),
            visual_projection: projection(self.vision_config.hidden_size),
            text_projection: projection(self.text_config.hidden_size),
            logit_scale: Initializer::Constant { value: self.logit_scale_init_value }.init([1], device),
        }
    }
}

/// Rows divided by their L2 norm, as transformers normalizes `image_embeds` / `text_embeds`.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = (x.clone() * x.clone()).sum_dim(1).sqrt();
    x / norm
}

impl ClipModel {
    /// Projected, unnormalized text features `[batch, projection_dim]` (`get_text_features`).
    pub fn get_text_features(&self, tokens: &TokenBatch) -> Tensor<2> {
        self.text_projection.forward(self.text_model.forward(tokens))
    }

    /// Projected, unnormalized image features `[batch, projection_dim]` (`get_image_features`).
    pub fn get_image_features(&self, pixels: Tensor<4>) -> Tensor<2> {
        self.visual_projection.forward(self.vision_model.forward(pixels))
    }

    /// `exp(logit_scale)`, the factor that turns cosine similarities into logits.
    pub fn logit_scale_exp(&self) -> Tensor<1> {
        self.logit_scale.val().exp()
    }

    /// `logits_per_image` `[images, texts]` from L2-normalized embeddings.
    pub fn logits(&self, image_embeds: Tensor<2>, text_embeds: Tensor<2>) -> Tensor<2> {
        let scale = self.logit_scale_exp().unsqueeze::<2>();
        image_embeds.matmul(text_embeds.transpose()) * scale
    }

    /// A copy (sharing every weight) whose towers keep only their first `layers - 1` layers
    /// and their last: it runs every kernel a full pass runs, for the compiling of pipelines
    /// at a fraction of a pass's cost. Its outputs mean nothing.
    pub fn shortened(&self, layers: usize) -> Self {
        let mut model = self.clone();
        for encoder in [&mut model.text_model.encoder, &mut model.vision_model.encoder] {
            if encoder.layers.len() > layers && layers >= 2 {
                let last = encoder.layers.pop().expect("more layers than kept");
                encoder.layers.truncate(layers - 1);
                encoder.layers.push(last);
            }
        }
        model
    }

    /// On the CPU, every Linear's weight packed for its matrix product, a layer at a time (so
    /// at most one layer's weight is held twice); see [`Linear::pack`]. `host` holds the 8-bit
    /// weights a loader kept for their layers ([`crate::quant::QuantMatrix::stays_on_host`]),
    /// and the 8-bit token embedding. Elsewhere, nothing.
    pub(crate) fn pack_weights(&mut self, host: &mut crate::weights::HostWeights) {
        for linear in self.linears_mut() {
            linear.pack_from(host);
        }
        self.vision_model.embeddings.pack();
        self.text_model.embeddings.token_embedding.take_from(host);
    }

    fn linears_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        let layers = self.text_model.encoder.layers.iter_mut().chain(self.vision_model.encoder.layers.iter_mut());
        let in_layers =
            layers.flat_map(|l| [&mut l.self_attn.qkv_proj, &mut l.self_attn.out_proj, &mut l.mlp.fc1, &mut l.mlp.fc2]);
        in_layers.chain([&mut self.visual_projection, &mut self.text_projection])
    }

    /// How many parameters the model has, packed ones included (burn's `num_params` counts
    /// the tensors in the module, which a packed layer has left empty).
    pub fn parameter_count(&self) -> usize {
        let layers = self.text_model.encoder.layers.iter().chain(&self.vision_model.encoder.layers);
        let linears = layers.flat_map(|l| [&l.self_attn.qkv_proj, &l.self_attn.out_proj, &l.mlp.fc1, &l.mlp.fc2]);
        let linears = linears.chain([&self.visual_projection, &self.text_projection]);
        let held: usize = linears.filter(|l| l.packed.is_some()).map(|l| l.dims().iter().product::<usize>()).sum();
        let patches = self.vision_model.embeddings.packed.as_ref().map_or(0, |p| p.d_in() * p.d_out());
        self.num_params() + held + patches + self.text_model.embeddings.token_embedding.held_values()
    }

    /// The full forward pass: (`logits_per_image`, `image_embeds`, `text_embeds`).
    pub fn forward(&self, tokens: &TokenBatch, pixels: Tensor<4>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let text = l2_normalize(self.get_text_features(tokens));
        let image = l2_normalize(self.get_image_features(pixels));
        (self.logits(image.clone(), text.clone()), image, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortened_model_keeps_the_first_layers_and_the_last_sharing_their_weights() {
        let json = include_str!("../../tests/fixtures/tiny-quickgelu/config.json")
            .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 5");
        let config = ClipConfig::from_json(&json).unwrap();
        assert_eq!(config.text_config.num_hidden_layers, 5, "the fixture's layer count was replaced");
        let model = config.init(&Device::flex());
        let short = model.shortened(3);
        for (full, short) in [
            (&model.text_model.encoder, &short.text_model.encoder),
            (&model.vision_model.encoder, &short.vision_model.encoder),
        ] {
            assert_eq!(short.layers.len(), 3);
            for (kept, from) in [(0, 0), (1, 1), (2, 4)] {
                let a = short.layers[kept].mlp.fc1.weight.val().into_data();
                let b = full.layers[from].mlp.fc1.weight.val().into_data();
                assert_eq!(a, b, "layer {kept} of the shortened model is layer {from}");
            }
        }
        // Nothing to drop: the model as it is.
        assert_eq!(model.shortened(5).text_model.encoder.layers.len(), 5);
        assert_eq!(model.shortened(9).vision_model.encoder.layers.len(), 5);
    }
}
