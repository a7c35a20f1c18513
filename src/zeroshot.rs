//! Zero-shot classification: labels × prompt templates → one embedding per label, computed once
//! and reused for every image; image → softmax over `logit_scale · cosine`, sorted.
//!
//! [`Clip`] bundles a loaded model with its tokenizer and preprocessing; it is what both the
//! command-line tool and the browser build call.

use burn::tensor::{Device, Tensor, TensorData};

use crate::Error;
use crate::config::{ClipConfig, PreprocessConfig};
use crate::device::read_f32;
use crate::kernels;
use crate::model::{ClipModel, l2_normalize};
use crate::preprocess::{self, Pixels, Rgb8};
use crate::stream::WeightStream;
use crate::tokenizer::{ClipTokenizer, Padding};
use crate::weights::{TensorSource, load_model};

/// CLIP's default prompt.
pub const DEFAULT_TEMPLATE: &str = "a photo of a {}.";

/// Prompts per text forward pass: bounds memory for large label sets (ImageNet × 80 templates).
const TEXT_BATCH: usize = 256;
/// Images per vision forward pass.
const IMAGE_BATCH: usize = 16;
/// Layers per tower in [`Clip::warm_up`]'s shortened model: two, to run one layer after
/// another, and the last.
const WARM_UP_LAYERS: usize = 3;

/// A model ready to embed and classify.
pub struct Clip {
    pub config: ClipConfig,
    pub preprocess: PreprocessConfig,
    pub tokenizer: ClipTokenizer,
    pub model: ClipModel,
    device: Device,
}

/// The files of a Hugging Face CLIP repository, already read.
#[derive(Debug, Clone, Copy)]
pub struct ModelFiles<'a> {
    pub config_json: &'a str,
    /// `preprocessor_config.json`; without it, CLIP's preprocessing at the model's image size.
    pub preprocessor_json: Option<&'a str>,
    /// `tokenizer.json`; without it, the built-in CLIP tokenizer.
    pub tokenizer_json: Option<&'a [u8]>,
}

/// Embeddings of a label set, one L2-normalized row per label.
pub struct LabelSet {
    pub labels: Vec<String>,
    pub templates: Vec<String>,
    /// `[labels, projection_dim]`, on the model's device.
    pub embeddings: Tensor<2>,
}

/// A label set being embedded a group of labels (about one text batch of prompts) at a time.
pub struct LabelSetJob {
    labels: Vec<String>,
    templates: Vec<String>,
    /// Embeddings of the groups done so far, in label order.
    parts: Vec<Tensor<2>>,
    /// Labels embedded so far.
    done: usize,
}

impl LabelSetJob {
    /// Prompts to embed in all: labels × templates.
    pub fn total_prompts(&self) -> usize {
        self.labels.len() * self.templates.len()
    }

    /// Prompts embedded so far (queued on the device: read a step's result to wait for it).
    pub fn done_prompts(&self) -> usize {
        self.done * self.templates.len()
    }

    /// Embed the next group of labels. Returns its `[group, projection_dim]` embeddings, or
    /// `None` when every label is done.
    pub fn step(&mut self, clip: &Clip) -> Result<Option<Tensor<2>>, Error> {
        if self.done == self.labels.len() {
            return Ok(None);
        }
        let group = (TEXT_BATCH / self.templates.len()).max(1);
        let end = (self.done + group).min(self.labels.len());
        let part = clip.embed_labels(&self.labels[self.done..end], &self.templates)?;
        self.parts.push(part.clone());
        self.done = end;
        Ok(Some(part))
    }

    /// Embed whatever is left and assemble the label set.
    pub fn finish(mut self, clip: &Clip) -> Result<LabelSet, Error> {
        while self.step(clip)?.is_some() {}
        let embeddings = Tensor::cat(self.parts, 0);
        Ok(LabelSet { labels: self.labels, templates: self.templates, embeddings })
    }
}

/// A [`Clip`] whose weights are arriving: [`push`](Self::push) the bytes of its
/// `model.safetensors` as they come (each tensor goes to the device as soon as it is complete),
/// then [`finish`](Self::finish).
pub struct ClipStream {
    pub config: ClipConfig,
    preprocess: PreprocessConfig,
    tokenizer: ClipTokenizer,
    weights: WeightStream,
    device: Device,
}

impl ClipStream {
    /// The next bytes of the weights file; fails as soon as the file is seen to be unusable.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.weights.push(bytes)
    }

    /// Bytes pushed so far.
    pub fn received(&self) -> u64 {
        self.weights.received()
    }

    /// The model, once the whole file is in.
    pub fn finish(self) -> Result<Clip, Error> {
        let model = self.weights.finish()?;
        Ok(Clip {
            config: self.config,
            preprocess: self.preprocess,
            tokenizer: self.tokenizer,
            model,
            device: self.device,
        })
    }
}

/// One label's score for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub label: String,
    pub probability: f32,
    pub logit: f32,
}

/// The weight files a model directory may hold, in the order [`Clip::load_dir`] prefers them.
#[cfg(not(target_family = "wasm"))]
pub const WEIGHT_FILES: [&str; 3] = ["model.safetensors", "pytorch_model.bin", "model.q8.safetensors"];

impl Clip {
    /// Build from a repository's files and a source of its weights.
    pub fn load(files: ModelFiles, weights: &impl TensorSource, device: &Device) -> Result<Self, Error> {
        let (config, preprocess, tokenizer) = Self::read_files(files)?;
        let model = load_model(&config, weights, device)?;
        Ok(Self { config, preprocess, tokenizer, model, device: device.clone() })
    }

    /// Start building from a repository's files, the weights (a `model.safetensors`) to be
    /// pushed in as they arrive: see [`ClipStream`].
    pub fn load_streaming(files: ModelFiles, device: &Device) -> Result<ClipStream, Error> {
        let (config, preprocess, tokenizer) = Self::read_files(files)?;
        let weights = WeightStream::new(&config, device)?;
        Ok(ClipStream { config, preprocess, tokenizer, weights, device: device.clone() })
    }

    fn read_files(files: ModelFiles) -> Result<(ClipConfig, PreprocessConfig, ClipTokenizer), Error> {
        let config = ClipConfig::from_json(files.config_json)?;
        let preprocess = match files.preprocessor_json {
            Some(json) => PreprocessConfig::from_json(json)?,
            None => PreprocessConfig::for_image_size(config.vision_config.image_size),
        };
        let size = config.vision_config.image_size;
        let probe = preprocess.output_size(size * 2, size * 3);
        if probe != (size, size) {
            return Err(Error::Config(format!(
                "preprocessing makes {}×{} images but the vision model takes {size}×{size}",
                probe.1, probe.0
            )));
        }
        let max_len = config.text_config.max_position_embeddings;
        let tokenizer = match files.tokenizer_json {
            Some(json) => ClipTokenizer::from_json(json, max_len)?,
            None => ClipTokenizer::builtin(max_len),
        };
        Ok((config, preprocess, tokenizer))
    }

    /// Load a Hugging Face model directory: `config.json`, the first of [`WEIGHT_FILES`] it
    /// holds, and optionally `preprocessor_config.json` and `tokenizer.json`.
    #[cfg(not(target_family = "wasm"))]
    pub fn load_dir(dir: &std::path::Path, device: &Device) -> Result<Self, Error> {
        // None there: the first, whose absence is reported after config.json's.
        let name = WEIGHT_FILES.iter().find(|name| dir.join(name).exists()).unwrap_or(&WEIGHT_FILES[0]);
        Self::load_dir_with(dir, name, device)
    }

    /// [`Self::load_dir`] with the weights of file `weights` in `dir` (`model.q8.safetensors`
    /// when the directory holds several).
    #[cfg(not(target_family = "wasm"))]
    pub fn load_dir_with(dir: &std::path::Path, weights: &str, device: &Device) -> Result<Self, Error> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
        let optional = |name: &str| -> Result<Option<Vec<u8>>, Error> {
            let path = dir.join(name);
            if path.exists() { read(name).map(Some) } else { Ok(None) }
        };
        let config =
            String::from_utf8(read("config.json")?).map_err(|_| Error::Config("config.json is not UTF-8".into()))?;
        let preprocessor = optional("preprocessor_config.json")?
            .map(|b| String::from_utf8(b).map_err(|_| Error::Config("preprocessor_config.json is not UTF-8".into())))
            .transpose()?;
        let tokenizer = optional("tokenizer.json")?;
        let files = ModelFiles {
            config_json: &config,
            preprocessor_json: preprocessor.as_deref(),
            tokenizer_json: tokenizer.as_deref(),
        };
        let path = dir.join(weights);
        if !path.exists() {
            let why = if weights == WEIGHT_FILES[0] {
                "not found, and no pytorch_model.bin or model.q8.safetensors either"
            } else {
                "not found"
            };
            return Err(Error::io(&path, std::io::Error::new(std::io::ErrorKind::NotFound, why)));
        }
        if weights.ends_with(".bin") {
            let weights = crate::pytorch::PytorchCheckpoint::open(&path)?;
            return Self::load(files, &weights, device);
        }
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        // Mapped, not read: the pages are the file's, so the process holds one copy of the weights.
        // SAFETY: the file is only read; webclip does not modify model files while running.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let weights = crate::weights::SafetensorsFile::parse(&map)?;
        Self::load(files, &weights, device)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Decode and preprocess an image file's bytes.
    pub fn prepare_image(&self, bytes: &[u8]) -> Result<Pixels, Error> {
        Ok(preprocess::preprocess(&preprocess::decode(bytes)?, &self.preprocess))
    }

    /// Decode, turn upright as the file's EXIF orientation says (transformers does not), and
    /// preprocess an image file's bytes.
    pub fn prepare_image_upright(&self, bytes: &[u8]) -> Result<Pixels, Error> {
        Ok(preprocess::preprocess(&preprocess::decode_upright(bytes)?, &self.preprocess))
    }

    /// Preprocess raw RGBA pixels (a canvas's `ImageData`).
    pub fn prepare_rgba(&self, width: usize, height: usize, rgba: &[u8]) -> Result<Pixels, Error> {
        Ok(preprocess::preprocess(&preprocess::from_rgba(width, height, rgba)?, &self.preprocess))
    }

    /// Preprocess an already decoded RGB image.
    pub fn prepare_rgb(&self, image: &Rgb8) -> Pixels {
        preprocess::preprocess(image, &self.preprocess)
    }

    /// L2-normalized image embeddings `[images, projection_dim]` (transformers' `image_embeds`).
    pub fn image_embeddings(&self, images: &[Pixels]) -> Result<Tensor<2>, Error> {
        if images.is_empty() {
            return Err(Error::Input("no images to embed".into()));
        }
        let chunks = images.chunks(IMAGE_BATCH).map(|chunk| {
            let (h, w) = (chunk[0].height, chunk[0].width);
            let mut data = Vec::with_capacity(chunk.len() * 3 * h * w);
            for p in chunk {
                data.extend_from_slice(&p.data);
            }
            let pixels = Tensor::<4>::from_data(TensorData::new(data, [chunk.len(), 3, h, w]), &self.device);
            kernels::on_pool(|| l2_normalize(self.model.get_image_features(pixels)))
        });
        Ok(Tensor::cat(chunks.collect(), 0))
    }

    /// L2-normalized text embeddings `[texts, projection_dim]` (transformers' `text_embeds`).
    /// Each batch is padded to its longest prompt, not to 77: the end-token pooling and the
    /// causal mask make the padding invisible, so the numbers are the same.
    pub fn text_embeddings(&self, texts: &[impl AsRef<str>]) -> Result<Tensor<2>, Error> {
        if texts.is_empty() {
            return Err(Error::Input("no texts to embed".into()));
        }
        let chunks = texts
            .chunks(TEXT_BATCH)
            .map(|chunk| {
                let enc = self.tokenizer.encode(chunk, Padding::Longest)?;
                Ok(kernels::on_pool(|| l2_normalize(self.model.get_text_features(&enc.tokens))))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Tensor::cat(chunks, 0))
    }

    /// Embed every label with every template. With several templates, CLIP's prompt
    /// ensembling: the mean of a label's normalized prompt embeddings, renormalized.
    pub fn label_set(&self, labels: &[impl AsRef<str>], templates: &[impl AsRef<str>]) -> Result<LabelSet, Error> {
        self.start_label_set(labels, templates)?.finish(self)
    }

    /// Check labels and templates and prepare to embed them a group at a time with
    /// [`LabelSetJob::step`], for callers that report progress or may abandon the work
    /// (ImageNet × 80 templates is 80 000 prompts).
    pub fn start_label_set(
        &self,
        labels: &[impl AsRef<str>],
        templates: &[impl AsRef<str>],
    ) -> Result<LabelSetJob, Error> {
        let labels: Vec<String> =
            labels.iter().map(|l| l.as_ref().trim().to_string()).filter(|l| !l.is_empty()).collect();
        if labels.is_empty() {
            return Err(Error::Input("the label list is empty: give at least one label".into()));
        }
        let mut templates: Vec<String> = templates.iter().map(|t| t.as_ref().to_string()).collect();
        if templates.is_empty() {
            templates.push(DEFAULT_TEMPLATE.into());
        }
        if let Some(t) = templates.iter().find(|t| !t.contains("{}")) {
            return Err(Error::Input(format!("the template {t:?} has no {{}} where the label goes")));
        }
        Ok(LabelSetJob { labels, templates, parts: Vec::new(), done: 0 })
    }

    /// Embeddings of `labels` ensembled over `templates`, `[labels, projection_dim]`.
    fn embed_labels(&self, labels: &[String], templates: &[String]) -> Result<Tensor<2>, Error> {
        let prompts: Vec<String> =
            labels.iter().flat_map(|l| templates.iter().map(move |t| t.replace("{}", l))).collect();
        let embeds = self.text_embeddings(&prompts)?; // [labels * templates, dim], label-major
        if templates.len() == 1 {
            return Ok(embeds);
        }
        let dim = embeds.dims()[1];
        let mean = embeds.reshape([labels.len(), templates.len(), dim]).mean_dim(1).reshape([labels.len(), dim]);
        Ok(l2_normalize(mean))
    }

    /// `logits_per_image` `[images, labels]` for normalized image embeddings.
    pub fn logits(&self, image_embeds: Tensor<2>, labels: &LabelSet) -> Tensor<2> {
        self.model.logits(image_embeds, labels.embeddings.clone())
    }

    /// Classify images against a label set: per image, every label sorted by probability.
    pub async fn classify(&self, images: &[Pixels], labels: &LabelSet) -> Result<Vec<Vec<Prediction>>, Error> {
        let logits = read_f32(self.logits(self.image_embeddings(images)?, labels)).await?;
        Ok(logits.chunks(labels.labels.len()).map(|row| predictions(&labels.labels, row)).collect())
    }

    /// Compile every GPU pipeline before the first real request: one blank image and one
    /// prompt classified, as [`label_set`](Self::label_set) and [`classify`](Self::classify)
    /// do, by a copy of the model whose towers keep their first two layers and their last
    /// ([`ClipModel::shortened`]). Every layer runs the same kernels, so these three run all
    /// that a full pass runs (a layer, a layer after another, the last, which computes only
    /// the rows it is read at), for a quarter of ViT-B/32's work: what the warm-up costs
    /// where the GPU is slow or emulated on the CPU.
    pub async fn warm_up(&self) -> Result<(), Error> {
        let short = Clip {
            config: self.config.clone(),
            preprocess: self.preprocess.clone(),
            tokenizer: self.tokenizer.clone(),
            model: self.model.shortened(WARM_UP_LAYERS),
            device: self.device.clone(),
        };
        let size = self.config.vision_config.image_size;
        let image = Pixels { height: size, width: size, data: vec![0.0; 3 * size * size] };
        let labels = short.label_set(&["warm-up"], &[DEFAULT_TEMPLATE])?;
        short.classify(&[image], &labels).await?;
        Ok(())
    }

    /// Host copies of normalized embeddings, one `Vec` per row.
    pub async fn rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>, Error> {
        let dim = t.dims()[1];
        Ok(read_f32(t).await?.chunks(dim).map(<[f32]>::to_vec).collect())
    }
}

/// Softmax over one image's logits (in f64, then rounded), sorted by probability, descending.
pub fn predictions(labels: &[String], logits: &[f32]) -> Vec<Prediction> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let mut out: Vec<Prediction> = labels
        .iter()
        .zip(logits)
        .zip(&exps)
        .map(|((label, &logit), &e)| Prediction { label: label.clone(), probability: (e / sum) as f32, logit })
        .collect();
    // Stable: equal probabilities keep the labels' order.
    out.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sorted() {
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let p = predictions(&labels, &[1.0, 3.0, 2.0]);
        assert_eq!(p.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(), ["b", "c", "a"]);
        let total: f32 = p.iter().map(|p| p.probability).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!((p[0].probability - 0.66524096).abs() < 1e-6);
    }
}
