//! The browser API: one wasm-bindgen class, [`WebClip`], driven by the page's Web Worker
//! (`www/worker.js`). Everything here is glue; the model, preprocessing and zero-shot logic are
//! the same code the CLI runs.
//!
//! Errors come back as rejected promises / thrown `Error`s with the library's message. A Rust
//! panic would abort the module, so none is expected; should one happen anyway (a GPU device
//! lost mid-kernel, say), the panic hook reports it to `globalThis.webclipPanic` first so the
//! worker can tell the page and restart.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Promise, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::device::{ComputeDevice, read_f32};
use crate::preprocess::Pixels;
use crate::pytorch::{PytorchCheckpoint, WeightsFormat};
use crate::weights::{RawTensor, SafetensorsIndex, TensorSource};
use crate::zeroshot::{Clip, LabelSet, ModelFiles};
use crate::{BackendKind, Error};

fn js_error(e: Error) -> JsValue {
    JsError::new(&e.to_string()).into()
}

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        web_sys::console::error_1(&JsValue::from_str(&msg));
        let global = js_sys::global();
        if let Ok(f) = js_sys::Reflect::get(&global, &JsValue::from_str("webclipPanic"))
            && let Some(f) = f.dyn_ref::<js_sys::Function>()
        {
            let _ = f.call1(&global, &JsValue::from_str(&msg));
        }
    }));
}

/// Weights read out of a JS `Uint8Array` one tensor at a time, so the wasm heap never holds a
/// second copy of the whole file.
struct JsWeights {
    index: SafetensorsIndex,
    buffer: Uint8Array,
}

impl JsWeights {
    fn new(buffer: Uint8Array) -> Result<Self, Error> {
        let len = buffer.length() as usize;
        let first = buffer.subarray(0, len.min(8) as u32).to_vec();
        let header_len = SafetensorsIndex::header_len(&first, len)?;
        let header = buffer.subarray(0, header_len as u32).to_vec();
        Ok(Self { index: SafetensorsIndex::parse(&header, len)?, buffer })
    }
}

impl TensorSource for JsWeights {
    fn tensor(&self, name: &str) -> Result<Option<RawTensor<'_>>, Error> {
        let Some((dtype, shape, range)) = self.index.locate(name) else { return Ok(None) };
        let data = self.buffer.subarray(range.start as u32, range.end as u32).to_vec();
        Ok(Some(RawTensor { dtype, shape, data: Cow::Owned(data) }))
    }
}

#[derive(Serialize)]
struct JsPrediction<'a> {
    label: &'a str,
    probability: f32,
    logit: f32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelInfo {
    projection_dim: usize,
    image_size: usize,
    vision_layers: usize,
    vision_width: usize,
    patch_size: usize,
    text_layers: usize,
    text_width: usize,
    parameters: usize,
}

#[derive(Default)]
struct State {
    clip: Option<Rc<Clip>>,
    /// The current label set and the key (labels + templates) it was computed for.
    labels: Option<(String, Rc<LabelSet>)>,
    /// Bumped by each label request and each model load; a label computation that sees it
    /// change stops.
    generation: u64,
}

/// CLIP in the browser: create on a backend, load a model, set labels, classify and embed.
#[wasm_bindgen]
pub struct WebClip {
    device: ComputeDevice,
    fallback_reason: Option<String>,
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl WebClip {
    /// `backend`: `"webgpu"`, `"cpu"`, or `"auto"` (WebGPU when the browser gives an adapter,
    /// else the CPU backend, with the reason in `fallbackReason`).
    pub async fn create(backend: String) -> Result<WebClip, JsValue> {
        let (device, fallback_reason) = match backend.as_str() {
            "cpu" => (ComputeDevice::cpu(), None),
            "webgpu" | "wgpu" => (ComputeDevice::wgpu_async().await.map_err(js_error)?, None),
            "auto" | "" => match ComputeDevice::wgpu_async().await {
                Ok(d) => (d, None),
                Err(e) => (ComputeDevice::cpu(), Some(e.to_string())),
            },
            other => return Err(js_error(Error::Input(format!("unknown backend {other:?}: use webgpu, cpu or auto")))),
        };
        Ok(WebClip { device, fallback_reason, state: Rc::default() })
    }

    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.device.kind {
            BackendKind::Wgpu => "webgpu".into(),
            BackendKind::Cpu => "cpu".into(),
        }
    }

    /// The GPU adapter's name, or `"CPU"`.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.device.adapter.clone()
    }

    /// Why `"auto"` fell back to the CPU, if it did.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// Load a model from a Hugging Face repository's files; `weights` is `model.safetensors` or
    /// `pytorch_model.bin` (told apart by their first bytes). Returns a summary of its shapes.
    pub fn load(
        &self,
        config_json: &str,
        preprocessor_json: Option<String>,
        tokenizer_json: Option<Vec<u8>>,
        weights: Uint8Array,
    ) -> Result<JsValue, JsValue> {
        let files = ModelFiles {
            config_json,
            preprocessor_json: preprocessor_json.as_deref(),
            tokenizer_json: tokenizer_json.as_deref(),
        };
        let first = weights.subarray(0, weights.length().min(8)).to_vec();
        let clip = match WeightsFormat::detect(&first) {
            WeightsFormat::Safetensors => {
                let weights = JsWeights::new(weights).map_err(js_error)?;
                Clip::load(files, &weights, &self.device.device)
            }
            // The zip's directory is at its end and its entries anywhere: the reader needs the
            // whole file in the wasm heap (a copy the safetensors path avoids).
            WeightsFormat::Pytorch => PytorchCheckpoint::from_bytes(weights.to_vec())
                .and_then(|weights| Clip::load(files, &weights, &self.device.device)),
        }
        .map_err(js_error)?;
        let (t, v) = (&clip.config.text_config, &clip.config.vision_config);
        let params = burn::module::Module::num_params(&clip.model);
        let info = ModelInfo {
            projection_dim: clip.config.projection_dim,
            image_size: v.image_size,
            vision_layers: v.num_hidden_layers,
            vision_width: v.hidden_size,
            patch_size: v.patch_size,
            text_layers: t.num_hidden_layers,
            text_width: t.hidden_size,
            parameters: params,
        };
        let mut state = self.state.borrow_mut();
        state.clip = Some(Rc::new(clip));
        state.labels = None;
        state.generation += 1;
        serde_wasm_bindgen::to_value(&info).map_err(Into::into)
    }

    fn clip(&self) -> Result<Rc<Clip>, JsValue> {
        self.state.borrow().clip.clone().ok_or_else(|| js_error(Error::Input("no model is loaded".into())))
    }

    fn labels(&self) -> Result<Rc<LabelSet>, JsValue> {
        let state = self.state.borrow();
        state.labels.as_ref().map(|(_, l)| l.clone()).ok_or_else(|| js_error(Error::Input("no labels are set".into())))
    }

    /// Run one image and one prompt through the model so every GPU pipeline is compiled
    /// before the first real request.
    #[wasm_bindgen(js_name = warmUp)]
    pub fn warm_up(&self) -> Result<Promise, JsValue> {
        let clip = self.clip()?;
        Ok(future_to_promise(async move {
            let size = clip.config.vision_config.image_size;
            let image = Pixels { height: size, width: size, data: vec![0.0; 3 * size * size] };
            let labels = clip.label_set(&["warm-up"], &["a photo of a {}."]).map_err(js_error)?;
            clip.classify(&[image], &labels).await.map_err(js_error)?;
            Ok(JsValue::UNDEFINED)
        }))
    }

    /// Set the labels and templates to classify against. Their embeddings are computed once
    /// and reused. Resolves to `"unchanged"` when the lists are the ones already set,
    /// `"computed"` once the new embeddings are ready, or `"superseded"` when a later call (or
    /// a new model) made this one moot. The work goes a group of prompts at a time, waiting
    /// for the device after each: `on_progress(done, total)` is then called with prompt
    /// counts, and a promise it returns is awaited, so the worker can take messages between
    /// groups. Until it finishes, classification uses the previous labels.
    #[wasm_bindgen(js_name = setLabels)]
    pub fn set_labels(
        &self,
        labels: Vec<String>,
        templates: Vec<String>,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Promise, JsValue> {
        let key = format!("{}\u{1}{}", labels.join("\n"), templates.join("\n"));
        // Any request, even for the labels already set, supersedes one still running.
        let generation = {
            let mut s = self.state.borrow_mut();
            s.generation += 1;
            if matches!(&s.labels, Some((k, _)) if *k == key) {
                return Ok(Promise::resolve(&JsValue::from_str("unchanged")));
            }
            s.generation
        };
        let clip = self.clip()?;
        let mut job = clip.start_label_set(&labels, &templates).map_err(js_error)?;
        let state = self.state.clone();
        let current = move || state.borrow().generation == generation;
        let state = self.state.clone();
        Ok(future_to_promise(async move {
            let total = job.total_prompts();
            while let Some(part) = job.step(&clip).map_err(js_error)? {
                // Reading the group back waits for the device, so the progress is real.
                read_f32(part).await.map_err(js_error)?;
                if let Some(f) = &on_progress {
                    let ret = f.call2(&JsValue::NULL, &job.done_prompts().into(), &total.into())?;
                    wasm_bindgen_futures::JsFuture::from(Promise::resolve(&ret)).await?;
                }
                if !current() {
                    return Ok("superseded".into());
                }
            }
            let set = job.finish(&clip).map_err(js_error)?;
            state.borrow_mut().labels = Some((key, Rc::new(set)));
            Ok("computed".into())
        }))
    }

    /// The current labels, as cleaned (trimmed, empty lines dropped).
    #[wasm_bindgen(getter, js_name = labelList)]
    pub fn label_list(&self) -> Vec<String> {
        self.state.borrow().labels.as_ref().map(|(_, l)| l.labels.clone()).unwrap_or_default()
    }

    /// Classify raw RGBA pixels (a canvas's `ImageData`): every label, most probable first,
    /// as `[{label, probability, logit}]`.
    #[wasm_bindgen(js_name = classifyRgba)]
    pub fn classify_rgba(&self, width: u32, height: u32, rgba: &[u8]) -> Result<Promise, JsValue> {
        let clip = self.clip()?;
        let pixels = clip.prepare_rgba(width as usize, height as usize, rgba).map_err(js_error)?;
        self.classify_pixels(clip, pixels)
    }

    /// Classify an encoded image file (PNG, JPEG, WebP, GIF, BMP), decoded in wasm; `upright`:
    /// apply its EXIF orientation first, as the browser shows it (transformers does not).
    #[wasm_bindgen(js_name = classifyEncoded)]
    pub fn classify_encoded(&self, bytes: &[u8], upright: bool) -> Result<Promise, JsValue> {
        let clip = self.clip()?;
        let pixels = prepare_encoded(&clip, bytes, upright)?;
        self.classify_pixels(clip, pixels)
    }

    fn classify_pixels(&self, clip: Rc<Clip>, pixels: Pixels) -> Result<Promise, JsValue> {
        let labels = self.labels()?;
        Ok(future_to_promise(async move {
            let preds = clip.classify(&[pixels], &labels).await.map_err(js_error)?;
            let out: Vec<JsPrediction> = preds[0]
                .iter()
                .map(|p| JsPrediction { label: &p.label, probability: p.probability, logit: p.logit })
                .collect();
            serde_wasm_bindgen::to_value(&out).map_err(Into::into)
        }))
    }

    /// The L2-normalized embedding of raw RGBA pixels, as a `Float32Array`.
    #[wasm_bindgen(js_name = embedRgba)]
    pub fn embed_rgba(&self, width: u32, height: u32, rgba: &[u8]) -> Result<Promise, JsValue> {
        let clip = self.clip()?;
        let pixels = clip.prepare_rgba(width as usize, height as usize, rgba).map_err(js_error)?;
        Ok(embed_image(clip, pixels))
    }

    /// The L2-normalized embedding of an encoded image file, as a `Float32Array`; `upright` as
    /// for `classifyEncoded`.
    #[wasm_bindgen(js_name = embedEncoded)]
    pub fn embed_encoded(&self, bytes: &[u8], upright: bool) -> Result<Promise, JsValue> {
        let clip = self.clip()?;
        let pixels = prepare_encoded(&clip, bytes, upright)?;
        Ok(embed_image(clip, pixels))
    }

    /// L2-normalized text embeddings, one `Float32Array` per text.
    #[wasm_bindgen(js_name = embedTexts)]
    pub fn embed_texts(&self, texts: Vec<String>) -> Result<Promise, JsValue> {
        let clip = self.clip()?;
        let embeds = clip.text_embeddings(&texts).map_err(js_error)?;
        Ok(future_to_promise(async move {
            let rows = Clip::rows(embeds).await.map_err(js_error)?;
            Ok(rows.iter().map(|r| Float32Array::from(r.as_slice())).collect::<Array>().into())
        }))
    }
}

fn prepare_encoded(clip: &Clip, bytes: &[u8], upright: bool) -> Result<Pixels, JsValue> {
    let pixels = if upright { clip.prepare_image_upright(bytes) } else { clip.prepare_image(bytes) };
    pixels.map_err(js_error)
}

fn embed_image(clip: Rc<Clip>, pixels: Pixels) -> Promise {
    future_to_promise(async move {
        let embeds = clip.image_embeddings(&[pixels]).map_err(js_error)?;
        let rows = Clip::rows(embeds).await.map_err(js_error)?;
        Ok(Float32Array::from(rows[0].as_slice()).into())
    })
}
