// webclip's engine, in a Web Worker: it fetches (or reads from the Cache API) a Hugging Face
// CLIP repository's files, loads them into the wasm module, and answers classify / embed
// requests. The page never blocks on it. Protocol: {id, op, args} in, {id, ok, result | error}
// out, plus {type: "progress"} while downloading and {type: "fatal"} if the engine dies.

import init, { WebClip } from "../webclip.js";
import { cachedBase, openCache, revisionKey } from "./cache.js";
import { relaxedSimd } from "./features.js";
import { byobReader, DownloadError, fetchBytes, fetchFailure, responseError } from "./download.js";
import { isCommit, resolveBase } from "./hub.js";

// A repository's files, in the order they are fetched, and what each is for (shown with the
// progress). The weights are model.safetensors or, in repositories that predate it (such as
// openai/clip-vit-base-patch32 at main), PyTorch's pytorch_model.bin.
const MODEL_FILES = [
  { name: "config.json", required: true, why: "model configuration" },
  { name: "preprocessor_config.json", required: false, why: "image preprocessing settings" },
  { name: "tokenizer.json", required: false, why: "tokenizer" },
];
const WEIGHTS = [
  { name: "model.safetensors", why: "weights" },
  { name: "pytorch_model.bin", why: "weights, PyTorch format: this repository has no model.safetensors" },
];
// With dtype "q8": webclip's 8-bit weights (`webclip convert --dtype q8`, a quarter of f32's
// size), under the name of Hugging Face's variant files (model.fp16.safetensors).
const Q8_WEIGHTS = { name: "model.q8.safetensors", why: "8-bit weights" };
/// The weight files to look for, in order: what `dtype` asks for; local files take any.
const weightFiles = (dtype, local = false) => (dtype === "q8" ? [Q8_WEIGHTS] : local ? [...WEIGHTS, Q8_WEIGHTS] : WEIGHTS);

let clip = null;

// The engine's two single-threaded builds of one module (scripts/build-relaxed.sh); both load
// through ../webclip.js. The third, threaded, has its own glue (scripts/build-threads.sh).
const WASM_BUILDS = {
  relaxed: new URL("../webclip_relaxed_bg.wasm", import.meta.url),
  baseline: new URL("../webclip_bg.wasm", import.meta.url),
};
const THREADS_JS = new URL("../threads/webclip.js", import.meta.url);
const THREADS_WASM = new URL("../threads/webclip_bg.wasm", import.meta.url);
// Starting the threads (a Web Worker each, compiling the module) takes well under a second; a
// pool that has not started in this long will not, and the engine goes on with one thread.
const POOL_TIMEOUT_MS = 30_000;
// onnxruntime-web takes min(4, cores / 2); every core is faster here (docs/cpu.md), up to 8.
const MAX_THREADS = 8;

// A Rust panic aborts the module; the hook in src/web.rs calls this first.
self.webclipPanic = (message) => self.postMessage({ type: "fatal", message });

// A lost GPU device (driver reset, GPU process crash, the OS reclaiming it) does not always
// make wgpu fail loudly: watch every device it creates and report the loss, so the page can
// restart the engine. The devices are kept on `self.webclipGpuDevices` for the tests, which
// destroy one to simulate a loss.
self.webclipGpuDevices = [];
if (self.navigator?.gpu) {
  const gpu = self.navigator.gpu;
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  gpu.requestAdapter = async (...args) => {
    const adapter = await requestAdapter(...args);
    if (adapter) {
      const requestDevice = adapter.requestDevice.bind(adapter);
      adapter.requestDevice = async (...dargs) => {
        const device = await requestDevice(...dargs);
        self.webclipGpuDevices.push(device);
        device.lost.then((info) => {
          const why = [info.reason, info.message].filter(Boolean).join(": ");
          self.postMessage({ type: "fatal", message: `the GPU device was lost${why ? ` (${why})` : ""}` });
        });
        return device;
      };
    }
    return adapter;
  };
}

const handlers = {
  async init({ backend, precision, wasmBuild, threads }) {
    // On the CPU in a cross-origin-isolated page (shared memory needs it), the threaded module;
    // else the one built with relaxed SIMD (fused multiply-add in the CPU's matrix products)
    // where the browser validates it, else the baseline SIMD128 one. Each falls back to the
    // next when its file is absent (a debug build has neither of the first two) or fails to
    // start, unless it was asked for by name.
    if (wasmBuild !== undefined && wasmBuild !== "threads" && !Object.hasOwn(WASM_BUILDS, wasmBuild)) throw new Error(`unknown wasmBuild ${JSON.stringify(wasmBuild)}: use "threads", "relaxed" or "baseline"`);
    if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) throw new Error(`threads must be a whole number, 1 or more (not ${JSON.stringify(threads)})`);
    if (wasmBuild === "relaxed" && !relaxedSimd()) throw new Error("this browser's WebAssembly has no relaxed SIMD: the relaxed build cannot run here");
    const choice = await chooseBackend(backend || "auto");
    const poolSize = threads ?? Math.min(MAX_THREADS, self.navigator?.hardwareConcurrency || 1);
    let build = wasmBuild ?? (relaxedSimd() ? "relaxed" : "baseline");
    let threadsNote = null;
    if (wasmBuild === "threads" || (wasmBuild === undefined && poolSize > 1)) {
      const why = whyNoThreads(choice.backend);
      if (why && wasmBuild === "threads") throw new Error(`the threaded build cannot run here: ${why}`);
      threadsNote = why;
      if (!why) build = "threads";
    }
    let Engine = WebClip;
    if (build === "threads") {
      try {
        Engine = await startThreads(poolSize);
      } catch (e) {
        if (wasmBuild === "threads") throw e;
        threadsNote = errorMessage(e);
        build = relaxedSimd() ? "relaxed" : "baseline";
      }
    }
    if (build !== "threads") {
      let wasm = WASM_BUILDS[build];
      try {
        try {
          await init({ module_or_path: wasm });
        } catch (e) {
          if (build !== "relaxed" || wasmBuild === "relaxed") throw e;
          build = "baseline";
          wasm = WASM_BUILDS.baseline;
          await init({ module_or_path: wasm });
        }
      } catch (e) {
        throw new Error(`The webclip engine (${wasm.href}) could not be loaded: ${errorMessage(e)}. If webclip is served from another site, it must send CORS headers, and the page's Content-Security-Policy must allow it (connect-src, and 'wasm-unsafe-eval' in script-src).`);
      }
    }
    // The threaded module has no GPU backend: it is only chosen for the CPU.
    clip = await Engine.create(build === "threads" ? "cpu" : choice.backend, precision === "f16");
    const adapter = clip.backend === "webgpu" ? choice.adapter || clip.adapter : "CPU";
    const threadCount = build === "threads" ? threadsOf() : 1;
    return { backend: clip.backend, adapter, reason: choice.reason, software: choice.software, fallbackReason: choice.backend === "cpu" && backend !== "cpu" ? choice.reason : null, precision: clip.precision, precisionNote: clip.precisionNote ?? null, wasmBuild: build, threads: threadCount, threadsNote: clip.backend === "cpu" ? threadsNote : null };
  },

  async load({ source }, id) {
    const t0 = performance.now();
    const files = source.kind === "files" ? await readLocalFiles(source.files, id, source.dtype) : await downloadFiles(source, id);
    progress(id, { stage: "loading", file: files.weightsName });
    let info;
    try {
      info = clip.finishLoad(files.model);
    } finally {
      files.model.free();
    }
    const loadMs = performance.now() - t0;
    progress(id, { stage: "warming" });
    const t1 = performance.now();
    await clip.warmUp();
    return { ...info, loadMs, warmMs: performance.now() - t1, weightBytes: files.weightBytes, weightsFile: files.weightsName, commit: files.commit ?? null, stored: files.stored };
  },

  // Embedded a group of prompts at a time with progress; other requests (camera frames, with
  // the previous labels) are answered between groups, and a newer label request supersedes.
  async labels({ labels, templates }, id) {
    const t0 = performance.now();
    let lastReport = 0;
    const status = await clip.setLabels(labels, templates, (done, total) => {
      const now = performance.now();
      if (now - lastReport > 100 || done === total) {
        lastReport = now;
        progress(id, { stage: "labels", done, total });
      }
      return yieldToMessages();
    });
    return { status, recomputed: status === "computed", superseded: status === "superseded", labels: clip.labelList, ms: performance.now() - t0 };
  },

  async classify({ image }) {
    const t0 = performance.now();
    const predictions = await withImage(image, (kind, a, b, c) => (kind === "rgba" ? clip.classifyRgba(a, b, c) : clip.classifyEncoded(a, image.upright)));
    return { predictions, ms: performance.now() - t0 };
  },

  async embedImage({ image }) {
    return withImage(image, (kind, a, b, c) => (kind === "rgba" ? clip.embedRgba(a, b, c) : clip.embedEncoded(a, image.upright)));
  },

  async embedText({ texts }) {
    return clip.embedTexts(texts);
  },

};

self.onmessage = async ({ data }) => {
  const { id, op, args } = data;
  try {
    if (!handlers[op]) throw new Error(`unknown operation ${op}`);
    if (op !== "init" && !clip) throw new Error("the engine is not initialised");
    const result = await handlers[op](args || {}, id);
    self.postMessage({ id, ok: true, result });
  } catch (e) {
    const fatal = e instanceof WebAssembly.RuntimeError;
    self.postMessage({ id, ok: false, error: errorMessage(e), fatal, retryable: !!e?.retryable });
    if (fatal) self.postMessage({ type: "fatal", message: errorMessage(e) });
  }
};
self.postMessage({ type: "ready" });

/// Why the threaded module cannot run here (null if it can), in words that say what would
/// let it.
function whyNoThreads(backend) {
  if (backend !== "cpu") return "it computes on the CPU only, and this engine runs on WebGPU";
  if (!self.crossOriginIsolated) return "this page is not cross-origin isolated, so its threads cannot share memory (it needs the response headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp or credentialless)";
  if (typeof SharedArrayBuffer === "undefined") return "this browser has no SharedArrayBuffer";
  if (!relaxedSimd()) return "it is built with relaxed SIMD, which this browser's WebAssembly lacks";
  return null;
}

let threadsOf = () => 1;

/// The threaded module, loaded and its pool of `size` threads started; its WebClip class.
async function startThreads(size) {
  const start = async () => {
    let glue;
    try {
      glue = await import(THREADS_JS.href);
      await glue.default({ module_or_path: THREADS_WASM });
    } catch (e) {
      throw new Error(`the threaded build (${THREADS_JS.href}) could not be loaded (${errorMessage(e)})`);
    }
    await glue.initThreadPool(size);
    return glue;
  };
  let timer;
  const timeout = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`the threaded build's ${size} threads did not start within ${POOL_TIMEOUT_MS / 1000} s`)), POOL_TIMEOUT_MS);
  });
  try {
    const glue = await Promise.race([start(), timeout]);
    threadsOf = () => glue.threadCount();
    return glue.WebClip;
  } finally {
    clearTimeout(timer);
  }
}

/// Which backend to run on, and why, in plain words. "auto" takes WebGPU only on a hardware
/// adapter: a software one (SwiftShader, llvmpipe / lavapipe, WARP) runs shaders on the CPU,
/// far slower than webclip's own CPU backend (B/32: over a minute per image against half a
/// second on two cores).
async function chooseBackend(requested) {
  if (requested === "cpu") return { backend: "cpu", reason: "the CPU backend was chosen" };
  let adapter = null;
  let failure = null;
  try {
    adapter = self.navigator?.gpu ? await self.navigator.gpu.requestAdapter({ powerPreference: "high-performance" }) : null;
  } catch (e) {
    failure = errorMessage(e);
  }
  const info = adapter?.info || {};
  const name = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ");
  if (requested === "webgpu" || requested === "wgpu") return { backend: "webgpu", adapter: name, reason: "WebGPU was chosen" };
  if (!adapter) {
    const why = !self.navigator?.gpu ? "this browser has no WebGPU" : failure ? `WebGPU failed to start (${failure})` : "WebGPU offers no graphics adapter here (it may be switched off, or the GPU unsupported)";
    return { backend: "cpu", reason: `${why}, so webclip runs on the CPU` };
  }
  const software = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe|softpipe|\bwarp\b|basic render/i.test(name);
  if (software) {
    return {
      backend: "cpu",
      software: true,
      reason: `the only WebGPU adapter here is a software renderer (${name || "a fallback adapter"}) that runs on the CPU and is much slower than webclip's CPU backend, so webclip runs on the CPU`,
    };
  }
  return { backend: "webgpu", adapter: name, reason: `WebGPU runs on ${name || "the GPU"}` };
}

/// Let queued messages run: a macrotask, without setTimeout's 4 ms clamp.
const yieldChannel = new MessageChannel();
const yielded = [];
yieldChannel.port1.onmessage = () => yielded.shift()?.();
function yieldToMessages() {
  return new Promise((resolve) => {
    yielded.push(resolve);
    yieldChannel.port2.postMessage(0);
  });
}

function errorMessage(e) {
  if (e instanceof Error) return e.message;
  return String(e);
}

function progress(id, fields) {
  self.postMessage({ type: "progress", id, ...fields });
}

/// Pass an image to `run` as ("encoded", bytes) or ("rgba", width, height, pixels). Encoded
/// files are decoded in wasm (PNG, JPEG, WebP, GIF, BMP: the same code as the CLI); formats it
/// does not know (AVIF, SVG, ...) are decoded by the browser instead. `image.upright`: turn a
/// file upright as its EXIF orientation says (as the browser displays it).
async function withImage(image, run) {
  if (image.kind === "rgba") return run("rgba", image.width, image.height, new Uint8Array(image.data));
  const bytes = new Uint8Array(image.bytes);
  try {
    return await run("encoded", bytes);
  } catch (e) {
    if (!/unrecognised image format/.test(errorMessage(e))) throw e;
    let bitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes]), { imageOrientation: image.upright ? "from-image" : "none", premultiplyAlpha: "none", colorSpaceConversion: "none" });
    } catch {
      throw new Error("This file is not an image webclip or the browser can decode (supported: PNG, JPEG, WebP, GIF, BMP, and what the browser shows).");
    }
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    return run("rgba", bitmap.width, bitmap.height, new Uint8Array(data.buffer));
  }
}

/// A repository's files, from the offline cache or the network. For a hub branch (a moving
/// revision such as "main"), config.json is fetched first: its X-Repo-Commit says which
/// commit the branch is at, and every file is then fetched at, and cached under, that commit.
/// Offline, the branch's last known commit is used.
async function downloadFiles(source, id) {
  const cache = await openCache();
  storeFailed = false;
  const what = (file) => ({ file, repo: source.repo, revision: source.revision });
  let base = source.base;
  let commit = source.repo && isCommit(source.revision) ? source.revision : null;
  const out = {};
  if (source.repo && !commit) {
    let response = null;
    const since = performance.now();
    try {
      response = await fetch(new URL("config.json", source.base).href, { mode: "cors", credentials: "omit" });
    } catch {
      // Offline (or the hub unreachable): the files of the last commit seen, if stored.
      base = await cachedBase(source, cache);
      if (!base) throw await fetchFailure(source.base, "config.json", since);
    }
    if (response) {
      if (!response.ok) throw responseError(response, { ...what("config.json"), url: response.url });
      commit = response.headers.get("x-repo-commit");
      if (commit && isCommit(commit)) {
        base = resolveBase(source.repo, commit, new URL(source.base).origin);
        const previous = await cachedBase(source, cache);
        out["config.json"] = await download(new URL("config.json", base).href, { ...what("config.json"), why: `model configuration, ${source.revision} is at commit ${commit.slice(0, 8)}` }, id, cache, response);
        await cache?.put(revisionKey(source.base), new Response(commit)).catch(() => {});
        if (previous && previous !== base) forgetFiles(cache, previous);
      } else {
        commit = null;
        out["config.json"] = await download(new URL("config.json", base).href, { ...what("config.json"), why: "model configuration" }, id, cache, response);
      }
    }
  }
  out.commit = commit;
  for (const { name, required, why } of MODEL_FILES) {
    if (out[name] !== undefined) continue;
    out[name] = await download(new URL(name, base).href, { ...what(name), why, optional: !required }, id, cache);
  }
  const sink = modelSink(out);
  try {
    const where = source.repo ? `${source.repo} at ${source.revision}` : base;
    const files = weightFiles(source.dtype);
    sink.prepare();
    const absent = source.dtype === "q8" ? `${where} has no model.q8.safetensors (8-bit weights): make one with \`webclip convert --dtype q8\`, or load the model without dtype "q8".` : `${where} has neither model.safetensors nor pytorch_model.bin.`;
    for (const [i, { name, why }] of files.entries()) {
      const last = i === files.length - 1;
      const got = await download(new URL(name, base).href, { ...what(name), why, optional: !last, resumable: true }, id, cache, null, last ? absent : null, sink);
      if (got) {
        out.model = sink.load;
        out.weightBytes = got.length;
        out.weightsName = name;
        break;
      }
    }
  } catch (e) {
    sink.load?.free(); // the tensors loaded so far
    throw e;
  }
  out.stored = !!cache && !storeFailed;
  return out;
}

/// Set when a file could not be put in the cache (storage full): the model then runs from
/// memory and the page says it will be downloaded again next time.
let storeFailed = false;

/// Drop the stored files of a commit a branch has moved away from.
async function forgetFiles(cache, base) {
  for (const request of (await cache?.keys()) || []) {
    if (request.url.startsWith(base)) await cache.delete(request).catch(() => {});
  }
}

/// One file, from the cache when it is there (no request at all), else downloaded (with
/// resumption and retries) and stored. An absent optional file gives null, remembered so a
/// later offline visit asks nothing. `missing`: the message when a required file is absent.
/// Gives the file's bytes, or with a `sink` (see fetchBytes), hands them to it as they arrive
/// (and to the cache at the same time) and gives {length}.
async function download(url, what, id, cache, firstResponse = null, missing = null, sink = null) {
  const { file, why } = what;
  const hit = cache ? await cache.match(url) : undefined;
  if (hit && hit.status === 404) {
    if (what.optional) return null;
  } else if (hit) {
    const total = Number(hit.headers.get("content-length")) || 0;
    return readStream(hit.body, total, file, id, { cached: true, why }, sink);
  }
  progress(id, { file, why, loaded: 0, total: 0 });
  let store = null;
  const storing = sink && cache && !storeFailed && {
    async start(info) {
      store?.abort();
      store = cacheWriter(cache, url, info);
      return sink.start(info);
    },
    async write(chunk) {
      await sink.write(chunk);
      await store.write(chunk);
    },
  };
  let result;
  try {
    result = await fetchBytes(url, { what, resumable: what.resumable, firstResponse, sink: storing || sink, reuse: !storing, onProgress: (p) => progress(id, { file, why, ...p }) });
  } catch (e) {
    store?.abort();
    if (e instanceof DownloadError && e.absent) {
      progress(id, { file, why, absent: true, done: true });
      if (what.optional) {
        await cache?.put(url, new Response(null, { status: 404 })).catch(() => {});
        return null;
      }
      if (missing) throw new DownloadError(missing);
    }
    throw e;
  }
  const bytes = result.bytes;
  if (result.length === 0) {
    store?.abort();
    throw new DownloadError(`${file} from ${new URL(url).host} is empty (0 bytes): the file on the server is broken or was not uploaded completely.`);
  }
  if (store) {
    try {
      await store.close();
    } catch (e) {
      storageFull(id, file, e);
    }
    return { length: result.length };
  }
  if (sink) return { length: result.length };
  if (cache && !storeFailed) {
    try {
      await cache.put(url, new Response(chunked(bytes), { headers: { "content-length": String(bytes.length), etag: result.response?.headers.get("etag") || "" } }));
    } catch (e) {
      storageFull(id, file, e);
    }
  }
  return bytes;
}

function storageFull(id, file, e) {
  progress(id, { file, warning: `The model could not be stored for offline use (${errorMessage(e)}: browser storage may be full). It runs from memory now and will be downloaded again on the next visit.`, storageFull: true });
  storeFailed = true;
}

/// Where the weights go as they arrive: into the engine (WebClip.beginLoad), which builds the
/// model from a model.safetensors tensor by tensor, so the worker never holds the whole file.
function modelSink(files) {
  const text = (b) => (b ? new TextDecoder().decode(b) : undefined);
  const begin = (total) => clip.beginLoad(text(files["config.json"]), text(files["preprocessor_config.json"]), files["tokenizer.json"] ?? undefined, total);
  const sink = {
    load: null,
    /// Whether `load` was begun ahead and no file has started into it yet.
    ahead: false,
    /// Begin the load while the weights' request is in flight. Reading the configuration and
    /// building the tokenizer takes a few hundred milliseconds in the engine; begun when the
    /// response came, they kept its bytes waiting unread, and a connection cut meanwhile lost
    /// them all (the body stream drops what it holds when it errors), so the download started
    /// over instead of resuming.
    prepare() {
      if (sink.load) return;
      sink.load = begin(0);
      sink.ahead = true;
    },
    start({ total }) {
      if (sink.ahead) {
        sink.ahead = false;
        sink.load.expectLength(total || 0);
        return;
      }
      sink.load?.free();
      sink.load = begin(total || 0);
    },
    write(chunk) {
      sink.load.push(chunk);
    },
  };
  return sink;
}

/// A cache entry written while its file downloads: the body is a stream fed chunk by chunk.
/// Its queue is bounded, so a slow disk slows the download rather than piling the file up in
/// memory. `close()` resolves once the entry is stored; `abort()` drops it (a restarted or
/// broken download is never stored).
function cacheWriter(cache, url, { total, etag }) {
  let controller;
  let wake = null;
  let failed = null;
  const body = new ReadableStream(
    {
      start: (c) => (controller = c),
      pull: () => {
        wake?.();
        wake = null;
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: 16 << 20 }),
  );
  const headers = { etag: etag || "" };
  if (total) headers["content-length"] = String(total);
  const stored = cache.put(url, new Response(body, { headers })).catch((e) => {
    failed ||= e;
    wake?.();
  });
  return {
    async write(chunk) {
      if (failed) return;
      try {
        controller.enqueue(chunk);
      } catch (e) {
        failed ||= e;
        return;
      }
      while (!failed && controller.desiredSize <= 0) await new Promise((r) => (wake = r));
    },
    async close() {
      if (!failed) controller.close();
      await stored;
      if (failed) throw failed;
    },
    abort() {
      failed ||= new Error("aborted");
      try {
        controller.error(failed);
      } catch {}
      wake?.();
    },
  };
}

/// A body that hands `bytes` over a piece at a time. Chromium's Cache API often fails
/// ("Unexpected internal error") to store a Response made from one buffer of about 600 MB (a
/// ViT-B/32 f32 file is 605 MB): 4 of 4 fresh profiles failed to store 605 MB from a worker,
/// while all stored 500 MB, and the same 605 MB streamed (tested up to 1.2 GB).
function chunked(bytes, size = 8 << 20) {
  let at = 0;
  return new ReadableStream(
    {
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.subarray(at, at + size));
        at += size;
      },
    },
    { highWaterMark: 0 },
  );
}

async function readLocalFiles(files, id, dtype) {
  const out = {};
  for (const { name, required, why } of MODEL_FILES) out[name] = await readLocal(files[name], name, required, id, why);
  const weights = weightFiles(dtype, true).find(({ name }) => files[name]);
  if (!weights) throw new Error(dtype === "q8" ? "The local files lack model.q8.safetensors (8-bit weights, made by `webclip convert --dtype q8`)." : "The local files lack the weights: a Hugging Face CLIP directory has config.json and model.safetensors (or pytorch_model.bin, or model.q8.safetensors).");
  const sink = modelSink(out);
  try {
    out.weightBytes = (await readLocal(files[weights.name], weights.name, true, id, weights.why, sink)).length;
  } catch (e) {
    sink.load?.free();
    throw e;
  }
  out.model = sink.load;
  out.weightsName = weights.name;
  return out;
}

async function readLocal(fileObj, file, required, id, why, sink = null) {
  if (!fileObj) {
    if (required) throw new Error(`The local files lack ${file} (a Hugging Face CLIP directory has config.json and model.safetensors).`);
    return null;
  }
  return readStream(fileObj.stream(), fileObj.size, file, id, { local: true, why }, sink);
}

/// Read a local file or a cached response, with progress: its bytes, or with a `sink`, handed
/// over as they come ({length}).
async function readStream(stream, total, file, id, flags, sink = null) {
  // Into a sink (which copies each piece into the engine at once), read through one reused
  // buffer where the stream allows it (a byte stream: Chromium's cached responses and
  // files), instead of a new buffer per piece left for the garbage collector: the 605 MB of
  // a ViT-B/32 otherwise pass through the worker's JS heap as garbage while it loads.
  const byob = sink && byobReader(stream);
  const reader = byob || stream.getReader();
  let reused = byob && new ArrayBuffer(1 << 20);
  let buffer = total && !sink ? new Uint8Array(total) : null;
  const chunks = [];
  let loaded = 0;
  const start = performance.now();
  let lastReport = 0;
  progress(id, { file, loaded: 0, total, ...flags });
  if (sink) await sink.start({ total });
  for (;;) {
    const { done, value } = byob ? await reader.read(new Uint8Array(reused)) : await reader.read();
    if (done) break;
    if (byob) reused = value.buffer; // the same memory, handed back
    if (sink) {
      try {
        await sink.write(value);
      } catch (e) {
        reader.cancel().catch(() => {});
        throw e;
      }
    } else if (buffer && loaded + value.length <= buffer.length) buffer.set(value, loaded);
    else {
      if (buffer) {
        chunks.push(buffer.subarray(0, loaded));
        buffer = null;
      }
      chunks.push(value);
    }
    loaded += value.length;
    const now = performance.now();
    if (now - lastReport > 100) {
      lastReport = now;
      progress(id, { file, loaded, total: Math.max(total, loaded), rate: (loaded / (now - start)) * 1000, ...flags });
    }
  }
  const seconds = (performance.now() - start) / 1000;
  progress(id, { file, loaded, total: loaded, rate: seconds > 0 ? loaded / seconds : 0, done: true, ...flags });
  if (sink) return { length: loaded };
  if (buffer) return loaded === buffer.length ? buffer : buffer.subarray(0, loaded);
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
