//! The browser API: one wasm-bindgen class, [`WebClip`], driven by the page's Web Worker
//! (`www/worker.js`). Everything here is glue; the model, preprocessing and zero-shot logic are
//! the same code the CLI runs.
//!
//! Errors come back as rejected promises / thrown `Error`s with the library's message. A Rust
//! panic would abort the module, so none is expected; should one happen anyway (a GPU device
//! lost mid-kernel, say), the panic hook reports it to `globalThis.webclipPanic` first so the
//! worker can tell the page and restart.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::device::{ComputeDevice, read_f32};
use crate::preprocess::Pixels;
use crate::pytorch::{PytorchCheckpoint, WeightsFormat};
use crate::zeroshot::{Clip, ClipStream, LabelSet, ModelFiles};
use crate::{BackendKind, Error};

/// Starts the threaded module's pool of `n` Web Workers (JS: `await initThreadPool(n)`).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

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

/// A model load in progress (see [`WebClip::begin_load`]): the weights file goes in piece by
/// piece with [`ModelLoad::push`].
#[wasm_bindgen]
pub struct ModelLoad {
    config_json: String,
    preprocessor_json: Option<String>,
    tokenizer_json: Option<Vec<u8>>,
    expected_len: usize,
    state: LoadState,
    received: u64,
}

enum LoadState {
    /// Until the first 8 bytes tell the format.
    Sniffing(Vec<u8>, ClipStream),
    Safetensors(ClipStream),
    Pytorch(Vec<u8>),
    Done,
}

#[wasm_bindgen]
impl ModelLoad {
    /// The next bytes of the weights file. Throws as soon as they show the file is unusable.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        self.received += bytes.len() as u64;
        if let LoadState::Sniffing(head, _) = &mut self.state {
            head.extend_from_slice(bytes);
            if head.len() < 8 {
                return Ok(());
            }
            let LoadState::Sniffing(head, stream) = std::mem::replace(&mut self.state, LoadState::Done) else {
                unreachable!()
            };
            self.state = match WeightsFormat::detect(&head) {
                WeightsFormat::Safetensors => LoadState::Safetensors(stream),
                WeightsFormat::Pytorch => {
                    let mut all = Vec::with_capacity(self.expected_len.max(head.len()));
                    all.extend_from_slice(&head);
                    LoadState::Pytorch(all)
                }
            };
            return match &mut self.state {
                LoadState::Safetensors(stream) => stream.push(&head).map_err(js_error),
                _ => Ok(()),
            };
        }
        match &mut self.state {
            LoadState::Safetensors(stream) => stream.push(bytes).map_err(js_error),
            LoadState::Pytorch(all) => {
                all.extend_from_slice(bytes);
                Ok(())
            }
            _ => Err(js_error(Error::Input("this load was already finished".into()))),
        }
    }

    /// The file's length, once its response tells it: a load begun before the response (so that
    /// reading its bytes waits for nothing) learns it here, before the first push.
    #[wasm_bindgen(js_name = expectLength)]
    pub fn expect_length(&mut self, len: f64) {
        self.expected_len = len as usize;
    }

    /// Bytes pushed so far.
    #[wasm_bindgen(getter)]
    pub fn received(&self) -> f64 {
        self.received as f64
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
    precision_note: Option<String>,
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl WebClip {
    /// `backend`: `"webgpu"`, `"cpu"`, or `"auto"` (WebGPU when the browser gives an adapter,
    /// else the CPU backend, with the reason in `fallbackReason`). `f16`: compute in f16 where
    /// the adapter has `shader-f16`; elsewhere f32, with the reason in `precisionNote`.
    pub async fn create(backend: String, f16: Option<bool>) -> Result<WebClip, JsValue> {
        let (device, fallback_reason) = match backend.as_str() {
            "cpu" => (ComputeDevice::cpu(), None),
            "webgpu" | "wgpu" => (gpu().await.map_err(js_error)?, None),
            "auto" | "" => match gpu().await {
                Ok(d) => (d, None),
                Err(e) => (ComputeDevice::cpu(), Some(e.to_string())),
            },
            other => return Err(js_error(Error::Input(format!("unknown backend {other:?}: use webgpu, cpu or auto")))),
        };
        let mut device = device;
        let precision_note = match f16 {
            Some(true) => device.use_f16().err().map(|e| match e {
                Error::Device(why) => why,
                other => other.to_string(),
            }),
            _ => None,
        };
        Ok(WebClip { device, fallback_reason, precision_note, state: Rc::default() })
    }

    /// `"f16"` or `"f32"`: what the model computes in.
    #[wasm_bindgen(getter)]
    pub fn precision(&self) -> String {
        match self.device.precision {
            crate::Precision::F16 => "f16".into(),
            crate::Precision::F32 => "f32".into(),
        }
    }

    /// Why f16 was asked for and f32 is used, if it was.
    #[wasm_bindgen(getter, js_name = precisionNote)]
    pub fn precision_note(&self) -> Option<String> {
        self.precision_note.clone()
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

    /// Load a model from a Hugging Face repository's files, the weights (`model.safetensors`
    /// or `pytorch_model.bin`, told apart by their first bytes) as they arrive: `push` each
    /// piece into the returned [`ModelLoad`] as it comes, then [`Self::finish_load`].
    /// A `model.safetensors` is built into the model tensor by tensor, so the file is never
    /// held whole (and a file that does not fit the configuration fails at its header); a
    /// `pytorch_model.bin` is gathered in the wasm heap (`expected_len` bytes, if known, are
    /// reserved up front) and read at the end. The configuration and tokenizer are checked
    /// here, before any weight arrives.
    #[wasm_bindgen(js_name = beginLoad)]
    pub fn begin_load(
        &self,
        config_json: String,
        preprocessor_json: Option<String>,
        tokenizer_json: Option<Vec<u8>>,
        expected_len: f64,
    ) -> Result<ModelLoad, JsValue> {
        let files = ModelFiles {
            config_json: &config_json,
            preprocessor_json: preprocessor_json.as_deref(),
            tokenizer_json: tokenizer_json.as_deref(),
        };
        let stream = Clip::load_streaming(files, &self.device.device).map_err(js_error)?;
        self.device.check_fits(&stream.config).map_err(js_error)?;
        Ok(ModelLoad {
            config_json,
            preprocessor_json,
            tokenizer_json,
            expected_len: expected_len as usize,
            state: LoadState::Sniffing(Vec::with_capacity(8), stream),
            received: 0,
        })
    }

    /// Finish a [`Self::begin_load`] once every byte is pushed: the model replaces the
    /// current one. Returns a summary of its shapes.
    #[wasm_bindgen(js_name = finishLoad)]
    pub fn finish_load(&self, load: &mut ModelLoad) -> Result<JsValue, JsValue> {
        let files = ModelFiles {
            config_json: &load.config_json,
            preprocessor_json: load.preprocessor_json.as_deref(),
            tokenizer_json: load.tokenizer_json.as_deref(),
        };
        let clip = match std::mem::replace(&mut load.state, LoadState::Done) {
            LoadState::Safetensors(stream) => stream.finish(),
            LoadState::Pytorch(bytes) => {
                PytorchCheckpoint::from_bytes(bytes).and_then(|w| Clip::load(files, &w, &self.device.device))
            }
            // Fewer than 8 bytes: the whole-file reader names what is wrong.
            LoadState::Sniffing(head, _) => Clip::load(
                files,
                &crate::weights::SafetensorsFile::parse(&head).map_err(js_error)?,
                &self.device.device,
            ),
            LoadState::Done => Err(Error::Input("this load was already finished".into())),
        }
        .map_err(js_error)?;
        self.install(clip)
    }

    fn install(&self, clip: Clip) -> Result<JsValue, JsValue> {
        let params = clip.model.parameter_count();
        let (t, v) = (&clip.config.text_config, &clip.config.vision_config);
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

    /// Compile every GPU pipeline before the first real request ([`Clip::warm_up`]).
    #[wasm_bindgen(js_name = warmUp)]
    pub fn warm_up(&self) -> Result<Promise, JsValue> {
        let clip = self.clip()?;
        Ok(future_to_promise(async move {
            clip.warm_up().await.map_err(js_error)?;
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

/// The GPU, where this module has the backend for it: the threaded module computes on the
/// CPU only (see the `webgpu` feature in Cargo.toml).
async fn gpu() -> Result<ComputeDevice, Error> {
    #[cfg(feature = "webgpu")]
    return ComputeDevice::wgpu_async().await;
    #[cfg(not(feature = "webgpu"))]
    Err(Error::Device("this module (the threaded CPU build) has no WebGPU backend".into()))
}

/// How many threads this module's products and burn's CPU ops are spread over: the size of
/// the pool `initThreadPool` started, 1 in the single-threaded modules.
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    #[cfg(feature = "threads")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    1
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
