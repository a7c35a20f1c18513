// Types for webclip's ES module API (www/api.js). Hand-written: api.js is plain JavaScript
// served as it is, so these declarations are what TypeScript users check against. Keep them in
// step with api.js and worker.js (the engine builds most of the objects described here).

/** The default model: openai/clip-vit-base-patch32 pinned to the commit of its safetensors
 * conversion, so cached files never go stale. */
export declare const DEFAULT_MODEL: string;

/** The prompt template used when none is given; `{}` stands for the label. */
export declare const DEFAULT_TEMPLATE: string;

/** Where a model's files are. `repo` and `revision` are null for a plain base URL (not the
 * Hugging Face hub). `base` ends in "/": config.json and the weights are fetched under it. */
export interface ResolvedModel {
  repo: string | null;
  revision: string | null;
  base: string;
}

/** Parse what a visitor may type: "owner/name", "owner/name@revision", a hub page's address,
 * or any base URL (relative ones against `base`, by default the page's address). */
export declare function resolveModel(model?: string | URL | null, base?: string | URL): ResolvedModel;

/** Just the base URL of `resolveModel`. */
export declare function modelBaseUrl(model?: string | URL | null, base?: string | URL): string;

/** What can be classified or embedded. Files, blobs and raw bytes are decoded in wasm (PNG,
 * JPEG, WebP, GIF, BMP; other formats the browser knows through it); elements, bitmaps and
 * ImageData are read as RGBA pixels, as the browser draws them. */
export type ImageInput =
  | File
  | Blob
  | ArrayBuffer
  | ArrayBufferView
  | HTMLImageElement
  | HTMLCanvasElement
  | HTMLVideoElement
  | ImageBitmap
  | OffscreenCanvas
  | ImageData;

/** "auto" takes WebGPU only on a hardware adapter: a software one is slower than the CPU
 * backend. */
export type Backend = "auto" | "webgpu" | "cpu";

/** Local model files: a FileList or File[] (keyed by each file's name), or an object keyed by
 * the hub's file names ("config.json", "model.safetensors", ...). */
export type ModelFiles = FileList | readonly File[] | Readonly<Record<string, Blob>>;

/** One report while a model loads. Downloads report `file`, `loaded`, `total` and `rate`
 * repeatedly, then once with `done`; the flags say where the bytes came from or what went
 * wrong. After the files, `stage` says what the engine does with them. */
export interface LoadProgress {
  type: "progress";
  /** The request this report belongs to (internal; one per loadModel call). */
  id: number;
  /** The file's name in the repository, e.g. "model.safetensors". */
  file?: string;
  /** What the file is for, in words (shown beside the progress). */
  why?: string;
  /** Bytes read so far. */
  loaded?: number;
  /** Bytes expected; 0 while unknown. It may grow: hosts that compress count their bytes. */
  total?: number;
  /** Bytes per second. */
  rate?: number;
  /** Read from the offline cache: no request was made. */
  cached?: boolean;
  /** Read from the local files given to loadModel. */
  local?: boolean;
  /** The file is complete (or, with `absent`, known not to exist). */
  done?: boolean;
  /** An optional file the repository does not have (it is then done without). */
  absent?: boolean;
  /** The connection broke off; the download is resumed or retried after a pause. */
  interrupted?: boolean;
  /** 0 for the first try, counting up over retries. */
  attempt?: number;
  /** "loading": the weights go into the model; "warming": shaders compile, first run. */
  stage?: "loading" | "warming";
  /** Something the visitor should know that does not stop the load. */
  warning?: string;
  /** The file could not be stored for offline use (storage full): it runs from memory. */
  storageFull?: boolean;
}

/** Progress of a label set: prompts (labels × templates) embedded so far. */
export interface LabelsProgress {
  type: "progress";
  id: number;
  stage: "labels";
  done: number;
  total: number;
}

export interface LoadOptions {
  /** A Hugging Face repo id ("owner/name" or "owner/name@revision"), a hub page's address, or
   * a base URL holding the files. Defaults to DEFAULT_MODEL. Ignored when `files` is given. */
  model?: string;
  /** Local files instead of a download: then nothing touches the network. */
  files?: ModelFiles | null;
  backend?: Backend;
  /** "auto" (the default): model.safetensors, else pytorch_model.bin. "q8":
   * model.q8.safetensors, webclip's 8-bit weights (`webclip convert --dtype q8`), a quarter of
   * the f32 download; an error if the repository has none. */
  dtype?: "auto" | "q8";
  /** "f32" (the default: transformers' own numbers) or "f16": weights and arithmetic in half
   * precision on a WebGPU adapter with shader-f16 (half the GPU memory and bandwidth; what it
   * costs is in the README). Elsewhere the model runs in f32 and `precisionNote` says why. */
  precision?: "f32" | "f16";
  /** Which build of the engine's module runs. By default the best this browser runs: on the
   * CPU in a cross-origin-isolated page (and with relaxed SIMD), "threads" (the products and
   * the rest spread over a pool of Web Workers); else "relaxed" (relaxed SIMD's fused
   * multiply-add in the CPU's matrix products) where its WebAssembly validates relaxed SIMD;
   * else "baseline" (SIMD128). Asking for one that cannot run here is an error that says why. */
  wasmBuild?: WasmBuild;
  /** The threaded build's pool: by default the machine's cores, at most 8. 1 keeps the engine
   * on one thread (the "relaxed" or "baseline" build). */
  threads?: number;
  onProgress?: ((progress: LoadProgress) => void) | null;
  /** The engine's worker script, if it is not www/worker.js beside api.js (e.g. when a bundler
   * moved api.js). It must keep ../webclip.js, ../webclip_bg.wasm, ../webclip_relaxed_bg.wasm
   * and ../threads/ beside it. */
  workerUrl?: string | URL;
}

export type WasmBuild = "threads" | "relaxed" | "baseline";

/** What loaded, on what, and how long it took. */
export interface ModelInfo {
  /** The backend actually running: "auto" resolved. */
  backend: "webgpu" | "cpu";
  /** The WebGPU adapter's description, or "CPU". */
  adapter: string;
  /** Why this backend, in words (worth showing when it is the CPU). */
  reason: string;
  /** WebGPU offered only a software renderer, so the CPU was chosen. */
  software?: boolean;
  /** Why "auto" or "webgpu" ended on the CPU; null when it did not. */
  fallbackReason: string | null;
  /** What the model computes in. */
  precision: "f32" | "f16";
  /** Why f16 was asked for and f32 is used; null otherwise. */
  precisionNote: string | null;
  /** The build of the module that loaded (see {@link LoadOptions.wasmBuild}). */
  wasmBuild: WasmBuild;
  /** The threads the engine computes on: the pool's size with "threads", else 1. */
  threads: number;
  /** On the CPU, why the engine runs on one thread when it could use more (the page is not
   * cross-origin isolated, say); null otherwise. */
  threadsNote: string | null;
  /** Length of the embeddings. */
  projectionDim: number;
  /** Side of the square the image is resized and cropped to. */
  imageSize: number;
  visionLayers: number;
  visionWidth: number;
  patchSize: number;
  textLayers: number;
  textWidth: number;
  parameters: number;
  /** Download (or cache read) and weight loading, in milliseconds. */
  loadMs: number;
  /** Shader compilation and the first run, in milliseconds. */
  warmMs: number;
  weightBytes: number;
  weightsFile: "model.safetensors" | "pytorch_model.bin" | "model.q8.safetensors";
  /** The base URL the files came from, or "local files". */
  source: string;
  /** What was passed as `model`; null for local files. */
  model: string | null;
  repo: string | null;
  revision: string | null;
  /** The commit a hub branch resolved to (files are cached under it); null if unknown. */
  commit: string | null;
  /** Kept for offline use (false where the browser offers no Cache API). Absent for local
   * files, which are never stored. */
  stored?: boolean;
}

export interface Prediction {
  label: string;
  /** Softmax over all labels, 0..1. */
  probability: number;
  /** CLIP's scaled cosine similarity, before the softmax. */
  logit: number;
}

export interface ClassifyResult {
  /** Most probable first. */
  predictions: Prediction[];
  /** Time the engine took, in milliseconds. */
  ms: number;
}

/** What setLabels resolved to. When the labels were already set, nothing is recomputed and
 * `ms` and `status` are absent. */
export interface LabelsResult {
  recomputed: boolean;
  /** A later setLabels replaced these before they were ready; the later labels apply. */
  superseded: boolean;
  /** The labels as cleaned (trimmed, empty ones dropped). */
  labels: string[];
  ms?: number;
  status?: "computed" | "superseded" | "unchanged";
}

export interface ClassifyOptions {
  /** Set these labels first (embedded once, reused while they stay the same). */
  labels?: readonly string[];
  /** Prompt templates with `{}`; several are averaged (prompt ensembling). */
  templates?: readonly string[];
  /** Keep only the most probable `topK` predictions. */
  topK?: number;
  /** Turn image files upright as their EXIF tag says, as the browser shows them (default).
   * false reads them as stored, as transformers does. Pixels from elements are already
   * upright. */
  exifOrientation?: boolean;
}

export interface EmbedImageOptions {
  exifOrientation?: boolean;
}

export interface SetLabelsOptions {
  onProgress?: ((progress: LabelsProgress) => void) | null;
}

/** A loaded model, running in its own worker. Made by loadModel, not constructed. */
export declare class ClipModel {
  private constructor();
  readonly info: ModelInfo;
  get backend(): "webgpu" | "cpu";
  /** Called with a message when the engine dies (the GPU device was lost, wasm trapped); the
   * model is then unusable and a new one must be loaded. */
  set onfatal(handler: ((message: string) => void) | null);
  setLabels(labels: readonly string[], templates?: readonly string[], options?: SetLabelsOptions): Promise<LabelsResult>;
  /** Rejects if no labels were ever set, or if another call changed them meanwhile. */
  classify(image: ImageInput, options?: ClassifyOptions): Promise<ClassifyResult>;
  /** L2-normalized, as transformers' `image_embeds`. */
  embedImage(image: ImageInput, options?: EmbedImageOptions): Promise<Float32Array>;
  /** L2-normalized, one per text, as transformers' `text_embeds`. */
  embedText(texts: string | readonly string[]): Promise<Float32Array[]>;
  /** Stop the worker and free its memory (GPU buffers included). */
  dispose(): void;
}

/** How a failed load (or call) rejects: a plain Error, with `retryable` when the engine
 * answered (absent when the engine could not start or died). */
export interface WebclipError extends Error {
  /** Trying again later may help (offline, server busy, a dropped connection). */
  retryable?: boolean;
}

/** Load a model into a new worker. Rejects with a WebclipError that says why in words. */
export declare function loadModel(options?: LoadOptions): Promise<ClipModel>;

/** The offline store, and the browser's storage figures (quota and usage cover the whole
 * origin; null where the browser does not say). */
export interface CacheInfo {
  /** false where the browser offers no Cache API (private mode, sandboxed frames). */
  available: boolean;
  bytes: number;
  files: number;
  quota: number | null;
  usage: number | null;
  persisted: boolean | null;
}

export declare function cacheInfo(): Promise<CacheInfo>;
/** Delete every stored model; resolves to the store's figures after. */
export declare function clearCache(): Promise<CacheInfo>;
/** Whether a model's weights are stored, so loading it needs no download. */
export declare function isCached(model?: string | URL | null): Promise<boolean>;
/** Ask the browser to keep stored models when space runs short; resolves to whether storage
 * is persistent (the browser may say no, or ask the visitor). */
export declare function requestPersistence(): Promise<boolean>;
