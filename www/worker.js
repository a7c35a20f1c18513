// webclip's engine, in a Web Worker: it fetches (or reads from the Cache API) a Hugging Face
// CLIP repository's files, loads them into the wasm module, and answers classify / embed
// requests. The page never blocks on it. Protocol: {id, op, args} in, {id, ok, result | error}
// out, plus {type: "progress"} while downloading and {type: "fatal"} if the engine dies.

import init, { WebClip } from "../webclip.js";
import { openCache } from "./cache.js";

const MODEL_FILES = [
  { name: "config.json", required: true },
  { name: "preprocessor_config.json", required: false },
  { name: "tokenizer.json", required: false },
  { name: "model.safetensors", required: true },
];

let clip = null;

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
  async init({ backend }) {
    await init({ module_or_path: new URL("../webclip_bg.wasm", import.meta.url) });
    clip = await WebClip.create(backend || "auto");
    return { backend: clip.backend, adapter: clip.backend === "webgpu" ? clip.adapter || (await adapterName()) : "CPU", fallbackReason: clip.fallbackReason ?? null };
  },

  async load({ source }, id) {
    const t0 = performance.now();
    const files = {};
    for (const { name, required } of MODEL_FILES) {
      files[name] =
        source.kind === "files"
          ? await readLocal(source.files[name], name, required, id)
          : await download(new URL(name, source.base).href, name, required, id);
    }
    const text = (b) => (b ? new TextDecoder().decode(b) : undefined);
    progress(id, { stage: "loading", file: "model.safetensors" });
    const info = clip.load(text(files["config.json"]), text(files["preprocessor_config.json"]), files["tokenizer.json"] ?? undefined, files["model.safetensors"]);
    const loadMs = performance.now() - t0;
    progress(id, { stage: "warming" });
    const t1 = performance.now();
    await clip.warmUp();
    return { ...info, loadMs, warmMs: performance.now() - t1, weightBytes: files["model.safetensors"].length };
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
    self.postMessage({ id, ok: false, error: errorMessage(e), fatal });
    if (fatal) self.postMessage({ type: "fatal", message: errorMessage(e) });
  }
};
self.postMessage({ type: "ready" });

/// wgpu reports only the adapter's (often empty) description; ask WebGPU for the rest.
async function adapterName() {
  try {
    const info = (await navigator.gpu.requestAdapter())?.info;
    return [info?.vendor, info?.architecture, info?.device].filter(Boolean).join(" ") || "";
  } catch {
    return "";
  }
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

/// Fetch a file, from the cache when it is there (no request at all), reporting progress.
async function download(url, file, required, id) {
  const cache = await openCache();
  let response = cache ? await cache.match(url) : undefined;
  const cached = !!response;
  if (cached && response.status === 404) return null; // an optional file known to be absent
  if (!response) {
    try {
      response = await fetch(url, { mode: "cors", credentials: "omit" });
    } catch {
      throw new Error(
        `Could not download ${file} from ${url}: the request failed. You may be offline, or the server may not allow cross-origin downloads. You can also load the model from local files.`,
      );
    }
    if (!response.ok) {
      if (!required && (response.status === 404 || response.status === 401)) {
        // Remember the absence too, so a later offline visit asks nothing.
        await cache?.put(url, new Response(null, { status: 404 })).catch(() => {});
        return null;
      }
      const why = response.status === 404 ? "it does not exist (404)" : response.status === 401 ? "it needs authentication (401: is the repository gated or private?)" : `the server answered ${response.status} ${response.statusText}`;
      throw new Error(`Could not download ${file} from ${url}: ${why}.`);
    }
  }
  const total = Number(response.headers.get("content-length")) || 0;
  const bytes = await readStream(response.body, total, file, id, cached);
  if (total && bytes.length !== total) {
    throw new Error(`The download of ${file} was cut short: ${bytes.length} of ${total} bytes arrived. Try again, or load local files.`);
  }
  if (!cached && cache) {
    try {
      await cache.put(url, new Response(bytes, { headers: { "content-length": String(bytes.length) } }));
    } catch (e) {
      progress(id, { file, warning: `${file} could not be kept for offline use (${errorMessage(e)}: browser storage may be full).` });
    }
  }
  return bytes;
}

async function readLocal(fileObj, file, required, id) {
  if (!fileObj) {
    if (required) throw new Error(`The local files lack ${file} (a Hugging Face CLIP directory has config.json and model.safetensors).`);
    return null;
  }
  return readStream(fileObj.stream(), fileObj.size, file, id, false, true);
}

async function readStream(stream, total, file, id, cached, local = false) {
  const reader = stream.getReader();
  let buffer = total ? new Uint8Array(total) : null;
  const chunks = [];
  let loaded = 0;
  const start = performance.now();
  let lastReport = 0;
  progress(id, { file, loaded: 0, total, cached, local });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (buffer && loaded + value.length <= buffer.length) buffer.set(value, loaded);
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
      progress(id, { file, loaded, total, cached, local, rate: (loaded / (now - start)) * 1000 });
    }
  }
  const seconds = (performance.now() - start) / 1000;
  progress(id, { file, loaded, total: total || loaded, cached, local, rate: seconds > 0 ? loaded / seconds : 0, done: true });
  if (buffer) return loaded === buffer.length ? buffer : buffer.subarray(0, loaded);
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
