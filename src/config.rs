//! CLIP configuration, read from a Hugging Face `config.json` (and `preprocessor_config.json`).
//!
//! Field names and defaults are transformers' own (`CLIPTextConfig`, `CLIPVisionConfig`,
//! `CLIPConfig`, `CLIPImageProcessor`), so any HF CLIP repository's files deserialize as they are.

use serde::Deserialize;

use crate::Error;

/// The MLP activation. OpenAI's checkpoints use `quick_gelu`; some retrainings use `gelu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, the approximation OpenAI trained CLIP with.
    QuickGelu,
    /// The exact, erf-based GELU.
    Gelu,
}

/// The text tower (`text_config`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    /// `2` in the original OpenAI configs: transformers then pools at the argmax of the ids.
    pub eos_token_id: u32,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        }
    }
}

/// The vision tower (`vision_config`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// Patches along one side of the (square) input image.
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }
}

/// A whole CLIP model (`CLIPConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    pub text_config: ClipTextConfig,
    pub vision_config: ClipVisionConfig,
    pub projection_dim: usize,
    pub logit_scale_init_value: f64,
}

/// The JSON as HF writes it; older files carry `text_config_dict` / `vision_config_dict`.
#[derive(Deserialize)]
struct RawConfig {
    text_config: Option<ClipTextConfig>,
    text_config_dict: Option<ClipTextConfig>,
    vision_config: Option<ClipVisionConfig>,
    vision_config_dict: Option<ClipVisionConfig>,
    #[serde(default = "default_projection_dim")]
    projection_dim: usize,
    #[serde(default = "default_logit_scale")]
    logit_scale_init_value: f64,
}

fn default_projection_dim() -> usize {
    512
}

fn default_logit_scale() -> f64 {
    2.6592
}

impl ClipConfig {
    /// Parse a Hugging Face `config.json`.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| Error::Config(format!("config.json: {e}")))?;
        let config = Self {
            text_config: raw.text_config.or(raw.text_config_dict).unwrap_or_default(),
            vision_config: raw.vision_config.or(raw.vision_config_dict).unwrap_or_default(),
            projection_dim: raw.projection_dim,
            logit_scale_init_value: raw.logit_scale_init_value,
        };
        config.validate()?;
        Ok(config)
    }

    /// Reject shapes the model cannot be built with, before any weight is read.
    /// The largest parameter, by values: (its key, its value count). The token embedding for
    /// every OpenAI CLIP (ViT-L/14's is 49408 × 768, 152 MB in f32).
    pub fn largest_tensor(&self) -> (&'static str, usize) {
        let t = &self.text_config;
        let v = &self.vision_config;
        let patch = v.num_channels * v.patch_size * v.patch_size;
        [
            ("text_model.embeddings.token_embedding.weight", t.vocab_size * t.hidden_size),
            ("text_model.embeddings.position_embedding.weight", t.max_position_embeddings * t.hidden_size),
            ("text_model.encoder.layers.0.self_attn (q, k, v)", 3 * t.hidden_size * t.hidden_size),
            ("text_model.encoder.layers.0.mlp.fc1.weight", t.intermediate_size * t.hidden_size),
            ("vision_model.embeddings.patch_embedding.weight", v.hidden_size * patch),
            ("vision_model.embeddings.position_embedding.weight", (v.patches_per_side().pow(2) + 1) * v.hidden_size),
            ("vision_model.encoder.layers.0.self_attn (q, k, v)", 3 * v.hidden_size * v.hidden_size),
            ("vision_model.encoder.layers.0.mlp.fc1.weight", v.intermediate_size * v.hidden_size),
        ]
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .expect("a non-empty list")
    }

    pub fn validate(&self) -> Result<(), Error> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let bad = |m: String| Err(Error::Config(m));
        for (name, n) in [
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            ("text_config.intermediate_size", t.intermediate_size),
            ("text_config.max_position_embeddings", t.max_position_embeddings),
            ("text_config.vocab_size", t.vocab_size),
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.intermediate_size", v.intermediate_size),
            ("vision_config.patch_size", v.patch_size),
            ("vision_config.image_size", v.image_size),
            ("vision_config.num_channels", v.num_channels),
            ("projection_dim", self.projection_dim),
        ] {
            if n == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if !t.hidden_size.is_multiple_of(t.num_attention_heads) {
            return bad(format!(
                "text_config.hidden_size {} is not divisible by num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ));
        }
        if !v.hidden_size.is_multiple_of(v.num_attention_heads) {
            return bad(format!(
                "vision_config.hidden_size {} is not divisible by num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if !v.image_size.is_multiple_of(v.patch_size) {
            return bad(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if v.num_channels != 3 {
            return bad(format!("vision_config.num_channels is {}, only RGB (3) is supported", v.num_channels));
        }
        Ok(())
    }

    /// `openai/clip-vit-base-patch32`.
    pub fn vit_base_patch32() -> Self {
        Self {
            text_config: ClipTextConfig { eos_token_id: 2, ..Default::default() },
            vision_config: ClipVisionConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
        }
    }

    /// `openai/clip-vit-base-patch16`.
    pub fn vit_base_patch16() -> Self {
        let mut c = Self::vit_base_patch32();
        c.vision_config.patch_size = 16;
        c
    }

    /// `openai/clip-vit-large-patch14`.
    pub fn vit_large_patch14() -> Self {
        Self {
            text_config: ClipTextConfig {
                hidden_size: 768,
                intermediate_size: 3072,
                num_attention_heads: 12,
                eos_token_id: 2,
                ..Default::default()
            },
            vision_config: ClipVisionConfig {
                hidden_size: 1024,
                intermediate_size: 4096,
                num_hidden_layers: 24,
                num_attention_heads: 16,
                patch_size: 14,
                ..Default::default()
            },
            projection_dim: 768,
            logit_scale_init_value: 2.6592,
        }
    }

    /// A preset by its Hugging Face repository or short name (`ViT-B/32`, `openai/clip-vit-base-patch16`, ...).
    pub fn preset(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase().replace(['_', '/'], "-");
        let n = n.trim_start_matches("openai-");
        match n {
            "vit-b-32" | "clip-vit-base-patch32" => Some(Self::vit_base_patch32()),
            "vit-b-16" | "clip-vit-base-patch16" => Some(Self::vit_base_patch16()),
            "vit-l-14" | "clip-vit-large-patch14" => Some(Self::vit_large_patch14()),
            _ => None,
        }
    }
}

/// How images are prepared (`preprocessor_config.json`, as `CLIPImageProcessor` reads it).
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    /// Resize target: the shortest edge, or an exact (height, width).
    pub resize: ResizeTarget,
    /// Center crop (height, width); `None` when `do_center_crop` is off.
    pub crop: Option<(usize, usize)>,
    /// Factor applied to 8-bit values before normalizing (1/255), or `None` when off.
    pub rescale_factor: Option<f64>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub normalize: bool,
}

/// `size` in `preprocessor_config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTarget {
    ShortestEdge(usize),
    Exact { height: usize, width: usize },
    None,
}

/// CLIP's normalization constants (`OPENAI_CLIP_MEAN`, `OPENAI_CLIP_STD`), digit for digit as
/// transformers writes them (f32 rounds the last digits away).
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];

impl PreprocessConfig {
    /// The OpenAI preprocessing for a square input of `image_size`: resize the shortest edge, center crop.
    pub fn for_image_size(image_size: usize) -> Self {
        Self {
            resize: ResizeTarget::ShortestEdge(image_size),
            crop: Some((image_size, image_size)),
            rescale_factor: Some(1.0 / 255.0),
            mean: CLIP_MEAN,
            std: CLIP_STD,
            normalize: true,
        }
    }

    /// Parse a Hugging Face `preprocessor_config.json`; absent fields take `CLIPImageProcessor`'s defaults.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Size {
            shortest_edge: Option<usize>,
            height: Option<usize>,
            width: Option<usize>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum SizeField {
            Int(usize),
            Dict(Size),
        }
        #[derive(Deserialize)]
        struct Raw {
            do_resize: Option<bool>,
            size: Option<SizeField>,
            do_center_crop: Option<bool>,
            crop_size: Option<SizeField>,
            do_rescale: Option<bool>,
            rescale_factor: Option<f64>,
            do_normalize: Option<bool>,
            image_mean: Option<Vec<f32>>,
            image_std: Option<Vec<f32>>,
            resample: Option<u32>,
        }
        let err = |m: String| Error::Config(format!("preprocessor_config.json: {m}"));
        let raw: Raw = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
        if let Some(r) = raw.resample
            && r != 3
        {
            return Err(err(format!("resample {r} is not supported (CLIP uses 3, bicubic)")));
        }
        let resize = if raw.do_resize == Some(false) {
            ResizeTarget::None
        } else {
            match raw.size {
                None => ResizeTarget::ShortestEdge(224),
                Some(SizeField::Int(n)) => ResizeTarget::ShortestEdge(n),
                Some(SizeField::Dict(Size { shortest_edge: Some(n), .. })) => ResizeTarget::ShortestEdge(n),
                Some(SizeField::Dict(Size { height: Some(height), width: Some(width), .. })) => {
                    ResizeTarget::Exact { height, width }
                }
                Some(SizeField::Dict(_)) => return Err(err("size needs shortest_edge or height and width".into())),
            }
        };
        let crop = if raw.do_center_crop == Some(false) {
            None
        } else {
            match raw.crop_size {
                None => Some((224, 224)),
                Some(SizeField::Int(n)) => Some((n, n)),
                Some(SizeField::Dict(Size { height: Some(h), width: Some(w), .. })) => Some((h, w)),
                Some(SizeField::Dict(_)) => return Err(err("crop_size needs height and width".into())),
            }
        };
        let three = |v: Option<Vec<f32>>, default: [f32; 3], name: &str| -> Result<[f32; 3], Error> {
            match v {
                None => Ok(default),
                Some(v) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
                Some(v) => Err(err(format!("{name} has {} values, expected 3", v.len()))),
            }
        };
        let config = Self {
            resize,
            crop,
            rescale_factor: if raw.do_rescale == Some(false) {
                None
            } else {
                Some(raw.rescale_factor.unwrap_or(1.0 / 255.0))
            },
            mean: three(raw.image_mean, CLIP_MEAN, "image_mean")?,
            std: three(raw.image_std, CLIP_STD, "image_std")?,
            normalize: raw.do_normalize != Some(false),
        };
        if matches!(
            config.resize,
            ResizeTarget::ShortestEdge(0)
                | ResizeTarget::Exact { height: 0, .. }
                | ResizeTarget::Exact { width: 0, .. }
        ) || matches!(config.crop, Some((0, _)) | Some((_, 0)))
        {
            return Err(err("sizes must be positive".into()));
        }
        Ok(config)
    }

    /// The (height, width) of the tensor this produces for an image of the given size.
    pub fn output_size(&self, height: usize, width: usize) -> (usize, usize) {
        self.crop.unwrap_or_else(|| crate::preprocess::resized_size(self.resize, height, width))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_published_shapes() {
        let b32 = ClipConfig::preset("openai/clip-vit-base-patch32").unwrap();
        assert_eq!(b32.vision_config.patches_per_side(), 7);
        assert_eq!(ClipConfig::preset("ViT-B/16").unwrap().vision_config.patches_per_side(), 14);
        let l14 = ClipConfig::preset("vit-l-14").unwrap();
        assert_eq!((l14.vision_config.hidden_size, l14.projection_dim), (1024, 768));
        assert!(ClipConfig::preset("resnet50").is_none());
    }

    #[test]
    fn legacy_dict_keys_and_defaults() {
        let c = ClipConfig::from_json(
            r#"{"text_config_dict": {"hidden_size": 64, "num_attention_heads": 4}, "projection_dim": 32}"#,
        )
        .unwrap();
        assert_eq!(c.text_config.hidden_size, 64);
        assert_eq!(c.vision_config, ClipVisionConfig::default());
        assert_eq!(c.projection_dim, 32);
    }

    #[test]
    fn inconsistent_shapes_are_rejected() {
        let e = ClipConfig::from_json(r#"{"vision_config": {"image_size": 225}}"#).unwrap_err();
        assert!(e.to_string().contains("not a multiple of patch_size"), "{e}");
        let e = ClipConfig::from_json(r#"{"text_config": {"hidden_act": "relu"}}"#).unwrap_err();
        assert!(e.to_string().contains("relu"), "{e}");
    }

    #[test]
    fn preprocessor_sizes() {
        let p =
            PreprocessConfig::from_json(r#"{"size": {"shortest_edge": 36}, "crop_size": {"height": 28, "width": 28}}"#)
                .unwrap();
        assert_eq!(p.resize, ResizeTarget::ShortestEdge(36));
        assert_eq!(p.crop, Some((28, 28)));
        let p = PreprocessConfig::from_json(r#"{"size": 224, "crop_size": 224}"#).unwrap();
        assert_eq!((p.resize, p.crop), (ResizeTarget::ShortestEdge(224), Some((224, 224))));
        assert!(PreprocessConfig::from_json(r#"{"resample": 2}"#).is_err());
    }
}
