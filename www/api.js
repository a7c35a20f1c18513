// webclip's embeddable API: CLIP zero-shot classification and embeddings, computed in a Web
// Worker on WebGPU (or the CPU), with the weights fetched once and kept for offline use.
//
//   import { loadModel } from "./www/api.js";
//   const model = await loadModel({ model: "openai/clip-vit-base-patch32", onProgress: console.log });
//   const { predictions } = await model.classify(imgElement, { labels: ["cat", "dog"] });
//
// `image` may be a File/Blob, an <img>, <canvas>, <video>, ImageBitmap, OffscreenCanvas or
// ImageData.

import { DEFAULT_MODEL, resolveModel } from "./hub.js";

export { DEFAULT_MODEL, modelBaseUrl, resolveModel } from "./hub.js";
export const DEFAULT_TEMPLATE = "a photo of a {}.";

/// Load a model. `model`: a Hugging Face repo id ("owner/name", "owner/name@revision"), a
/// hub page's address, or a base URL holding the files; or `files`: {"config.json": File, ...}
/// or a FileList (then nothing touches the network). `backend`: "auto" (WebGPU on a hardware
/// adapter, else the CPU), "webgpu" or "cpu". `dtype`: "auto" (model.safetensors, else
/// pytorch_model.bin) or "q8" (model.q8.safetensors: webclip's 8-bit weights, a quarter of the
/// download). `precision`: "f32" (transformers' own numbers) or "f16" (half the GPU memory and
/// bandwidth, where the WebGPU adapter has shader-f16; elsewhere f32, said in `precisionNote`).
/// `wasmBuild`: which build of the engine's module runs, by default the one this browser runs
/// best: on the CPU in a cross-origin-isolated page "threads" (every core), else "relaxed"
/// (fused multiply-add in the CPU's matrix products, where WebAssembly has relaxed SIMD), else
/// "baseline" (SIMD128); `info.wasmBuild` says which one loaded, `info.threads` on how many
/// threads, `info.threadsNote` why one. `threads`: the threaded build's pool (default: the
/// cores, at most 8; 1 keeps to one thread).
/// `onProgress({file, why, loaded, total, rate, cached, stage, warning})` follows the download.
/// A failed load rejects with an Error whose `retryable` says whether trying again may help.
export async function loadModel({ model = DEFAULT_MODEL, files = null, backend = "auto", dtype = "auto", precision = "f32", wasmBuild, threads, onProgress = null, workerUrl } = {}) {
  if (!["auto", "q8"].includes(dtype)) throw new Error(`unknown dtype ${JSON.stringify(dtype)}: use "auto" or "q8"`);
  if (!["f32", "f16"].includes(precision)) throw new Error(`unknown precision ${JSON.stringify(precision)}: use "f32" or "f16"`);
  if (wasmBuild !== undefined && !["threads", "relaxed", "baseline"].includes(wasmBuild)) throw new Error(`unknown wasmBuild ${JSON.stringify(wasmBuild)}: use "threads", "relaxed" or "baseline"`);
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a whole number, 1 or more (not ${JSON.stringify(threads)})`);
  const source = files ? { kind: "files", files: normaliseFiles(files), dtype } : { kind: "url", ...resolveModel(model), dtype };
  const engine = new Engine(workerUrl || new URL("./worker.js", import.meta.url));
  try {
    const device = await engine.call("init", { backend, precision, wasmBuild, threads });
    const info = await engine.call("load", { source }, onProgress);
    return new ClipModel(engine, { ...device, ...info, source: files ? "local files" : source.base, model: files ? null : model, repo: source.repo ?? null, revision: source.revision ?? null });
  } catch (e) {
    engine.terminate();
    throw e;
  }
}

function normaliseFiles(files) {
  const out = {};
  const list = files instanceof FileList || Array.isArray(files) ? Array.from(files) : null;
  if (list) {
    for (const f of list) out[f.name] = f;
  } else Object.assign(out, files);
  return out;
}

/// The size of, and a way to clear, the weights kept for offline use.
export { cacheInfo, clearCache, isCached, requestPersistence } from "./cache.js";

export class ClipModel {
  constructor(engine, info) {
    this.engine = engine;
    /// backend ("webgpu" | "cpu"), adapter, reason (why that backend, in words),
    /// fallbackReason, wasmBuild ("threads" | "relaxed" | "baseline"), threads, threadsNote, projectionDim, imageSize, parameters, loadMs, warmMs, weightBytes,
    /// weightsFile, source, repo, revision, commit, stored (kept for offline use)
    this.info = info;
    this.labelKey = null;
  }

  get backend() {
    return this.info.backend;
  }

  /// Called with a message when the engine dies (e.g. the GPU device was lost).
  set onfatal(f) {
    this.engine.onfatal = f;
  }

  /// Set the labels to classify against; their embeddings are computed once and reused.
  /// `onProgress({stage: "labels", done, total})` counts prompts (labels × templates).
  /// Resolves to {recomputed, superseded, labels, ms}: `superseded` when a later call
  /// replaced these labels before they were ready (the later call's labels then apply).
  async setLabels(labels, templates = [DEFAULT_TEMPLATE], { onProgress = null } = {}) {
    const clean = labels.map((l) => String(l).trim()).filter(Boolean);
    if (clean.length === 0) throw new Error("The label list is empty: give at least one label.");
    const key = JSON.stringify([clean, templates]);
    if (key === this.labelKey && !this.pendingLabels) return { recomputed: false, superseded: false, labels: clean };
    if (this.pendingLabels?.key === key) return this.pendingLabels.promise;
    const promise = this.engine.call("labels", { labels: clean, templates }, onProgress).then(
      (out) => {
        if (!out.superseded) this.labelKey = key;
        return out;
      },
    );
    const pending = { key, promise };
    this.pendingLabels = pending;
    const clear = () => this.pendingLabels === pending && (this.pendingLabels = null);
    promise.then(clear, clear);
    return promise;
  }

  /// Classify one image: {predictions: [{label, probability, logit}], ms}, most probable
  /// first (all labels, or the top `topK`). `ms` is the time the engine took. Image files are
  /// turned upright as their EXIF orientation says, as the browser shows them (and as <img>
  /// and canvases already are); `exifOrientation: false` reads them as transformers does.
  async classify(image, { labels, templates, topK, exifOrientation = true } = {}) {
    if (labels) {
      const out = await this.setLabels(labels, templates || [DEFAULT_TEMPLATE]);
      if (out.superseded) throw new Error("The labels were changed by another call before this image was classified.");
    } else if (!this.labelKey) throw new Error("No labels: pass {labels: [...]} or call setLabels first.");
    const msg = { ...(await imageMessage(image)), upright: exifOrientation };
    const out = await this.engine.call("classify", { image: msg }, null, transfers(msg));
    if (topK) out.predictions = out.predictions.slice(0, topK);
    return out;
  }

  /// The L2-normalized image embedding (Float32Array), as transformers' `image_embeds`.
  /// `exifOrientation` as for `classify`.
  async embedImage(image, { exifOrientation = true } = {}) {
    const msg = { ...(await imageMessage(image)), upright: exifOrientation };
    return this.engine.call("embedImage", { image: msg }, null, transfers(msg));
  }

  /// L2-normalized text embeddings, one Float32Array per text.
  async embedText(texts) {
    return this.engine.call("embedText", { texts: Array.isArray(texts) ? texts : [texts] });
  }

  dispose() {
    this.engine.terminate();
  }
}

function transfers(msg) {
  return msg.kind === "rgba" ? [msg.data] : [msg.bytes];
}

/// Turn anything image-like into what the worker takes: encoded bytes (files: decoded in
/// wasm exactly as the CLI does) or RGBA pixels (drawn elements, camera frames).
async function imageMessage(image) {
  if (image instanceof Blob) return { kind: "encoded", bytes: await image.arrayBuffer() };
  if (image instanceof ArrayBuffer) return { kind: "encoded", bytes: image.slice(0) };
  if (ArrayBuffer.isView(image)) return { kind: "encoded", bytes: image.buffer.slice(image.byteOffset, image.byteOffset + image.byteLength) };
  if (typeof ImageData !== "undefined" && image instanceof ImageData) {
    return { kind: "rgba", width: image.width, height: image.height, data: image.data.buffer.slice(0) };
  }
  let width, height;
  if (typeof HTMLVideoElement !== "undefined" && image instanceof HTMLVideoElement) [width, height] = [image.videoWidth, image.videoHeight];
  else if (typeof HTMLImageElement !== "undefined" && image instanceof HTMLImageElement) {
    if (!image.complete) await image.decode();
    [width, height] = [image.naturalWidth, image.naturalHeight];
  } else if (image && "width" in image && "height" in image) [width, height] = [image.width, image.height];
  else throw new Error("Not an image: pass a File, Blob, <img>, <canvas>, <video>, ImageBitmap or ImageData.");
  if (!width || !height) throw new Error("The image has no pixels yet (not loaded, or a video without frames).");
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(image, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height).data;
  return { kind: "rgba", width, height, data: data.buffer };
}

/// Browsers start a worker only from a script of the page's own origin. When webclip is
/// served from another origin (a CDN), start a same-origin blob: module worker that imports
/// the engine by its absolute URL: the engine then resolves its wasm against its own URL.
/// (The host page's CSP must allow it: worker-src blob:, see the README.)
function startWorker(url) {
  const href = new URL(url, location.href);
  if (href.origin === location.origin) return new Worker(href, { type: "module", name: "webclip" });
  const blob = new Blob([`import ${JSON.stringify(href.href)};\n`], { type: "text/javascript" });
  const blobUrl = URL.createObjectURL(blob);
  const worker = new Worker(blobUrl, { type: "module", name: "webclip" });
  setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
  return worker;
}

/// The worker, with request/response matching, progress routing and death handling.
class Engine {
  constructor(url) {
    this.pending = new Map();
    this.nextId = 1;
    this.dead = null;
    this.onfatal = null;
    this.worker = startWorker(url);
    this.ready = new Promise((resolve, reject) => {
      this.worker.onerror = (e) => {
        e.preventDefault?.();
        const why = e.message || `its script could not be loaded from ${new URL(url, location.href).origin} (is it served with CORS headers, and does the page's Content-Security-Policy allow it?)`;
        reject(new Error(`The webclip engine could not start: ${why}.`));
        this.die(e.message || "worker error");
      };
      this.worker.onmessage = ({ data }) => {
        if (data.type === "ready") resolve();
        else this.receive(data);
      };
    });
  }

  receive(data) {
    if (data.type === "progress") return this.pending.get(data.id)?.onProgress?.(data);
    if (data.type === "fatal") return this.die(data.message);
    const p = this.pending.get(data.id);
    if (!p) return;
    this.pending.delete(data.id);
    if (data.ok) p.resolve(data.result);
    else p.reject(Object.assign(new Error(data.error), { retryable: !!data.retryable }));
  }

  die(message) {
    if (this.dead) return;
    this.dead = message;
    for (const p of this.pending.values()) p.reject(new Error(`The webclip engine stopped: ${message}`));
    this.pending.clear();
    this.worker.terminate();
    this.onfatal?.(message);
  }

  async call(op, args, onProgress = null, transfer = []) {
    await this.ready;
    if (this.dead) throw new Error(`The webclip engine stopped: ${this.dead}`);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  terminate() {
    this.dead = this.dead || "terminated";
    this.worker.terminate();
  }
}
