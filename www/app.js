// The webclip page: model loading with progress, labels, uploads / paste / drop / samples,
// the camera, and ranked results. All computation happens in the worker behind api.js.

import { DEFAULT_MODEL, cacheInfo, clearCache, isCached, loadModel, requestPersistence } from "./api.js";
import { PRESETS } from "./presets.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const SAMPLES = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"];

const state = {
  model: null,
  loading: null,
  busy: false,
  queue: [],
  camera: null,
  labelsDirty: true,
  samples: new Map(),
};

// ---------- model ----------

$("model-input").value = params.get("model") || DEFAULT_MODEL;
$("backend-select").value = params.get("backend") || "auto";

$("model-form").addEventListener("submit", (e) => {
  e.preventDefault();
  load({ model: $("model-input").value });
});
$("local-files").addEventListener("change", (e) => {
  const files = Array.from(e.target.files);
  e.target.value = "";
  if (files.length) load({ files });
});
$("clear-cache").addEventListener("click", async () => {
  showCache(await clearCache());
});

/// Load a model into a new engine; `notice` is shown once it is ready (after a restart).
async function load(source, notice = null) {
  if (state.loading) return;
  stopCamera();
  state.model?.dispose();
  state.model = null;
  state.labelsDirty = true;
  hideError("model-error");
  $("progress").replaceChildren();
  $("model-info").textContent = "";
  setStatus("loading", "Loading model…");
  $("load-button").disabled = true;
  const rows = new Map();
  state.loading = loadModel({
    ...source,
    backend: $("backend-select").value,
    dtype: params.get("dtype") || "auto",
    precision: params.get("precision") || "f32",
    // ?wasm=threads|relaxed|baseline: which build of the engine's module (default: the best this
    // browser runs); ?threads=N: the threaded build's pool (default: every core, at most 8).
    wasmBuild: params.get("wasm") || undefined,
    threads: params.get("threads") ? Number(params.get("threads")) : undefined,
    onProgress: (p) => progressRow(rows, p),
  });
  try {
    const model = await state.loading;
    state.model = model;
    model.onfatal = (message) => engineDied(message, source);
    const i = model.info;
    const simd = i.wasmBuild === "baseline" ? " SIMD" : ", relaxed SIMD";
    const where = i.backend === "webgpu" ? `WebGPU${i.adapter ? ` · ${i.adapter}` : ""}` : `CPU (WebAssembly${simd}, ${i.threads === 1 ? "1 thread" : `${i.threads} threads`})`;
    setStatus("ready", where);
    $("model-info").textContent =
      `${(i.parameters / 1e6).toFixed(1)} M parameters · ViT ${i.visionLayers}×${i.visionWidth}, patch ${i.patchSize}, ${i.imageSize} px · ` +
      `${i.weightsFile}${i.commit ? ` at commit ${i.commit.slice(0, 8)}` : ""} · loaded in ${(i.loadMs / 1000).toFixed(1)} s, ${i.backend === "webgpu" ? "shaders warmed" : "warmed up"} in ${(i.warmMs / 1000).toFixed(1)} s.`;
    $("backend-info").textContent = `${i.backend === "webgpu" ? "Running on WebGPU" : "Running on the CPU"}: ${i.reason}.${i.precision === "f16" ? " Computing in f16." : ""}${i.precisionNote ? ` Not in f16: ${i.precisionNote}.` : ""}${threadsAdvice(i)}`;
    $("backend-info").dataset.backend = i.backend;
    $("backend-info").dataset.software = String(!!i.software);
    document.body.dataset.backend = i.backend;
    document.body.dataset.wasmBuild = i.wasmBuild;
    document.body.dataset.threads = String(i.threads);
    document.body.dataset.ready = "true";
    if (notice) showError("model-error", notice);
    else if (!i.stored && source.model) showError("model-error", "This browser keeps no offline copy here (storage is unavailable or full): the model runs from memory and will be downloaded again on the next visit.");
    await applyLabels();
    drainQueue();
    // Ask the browser to keep the model when space runs short (it may decline).
    if (i.stored) await requestPersistence();
  } catch (e) {
    setStatus("error", "No model");
    const actions = [["Load local files instead", () => $("local-files").click()]];
    if (e.retryable) actions.unshift(["Retry", () => load(source)]);
    showError("model-error", e.message, actions);
  } finally {
    state.loading = null;
    $("load-button").disabled = false;
    showCache(await cacheInfo().catch(() => null));
  }
}

/// Whether the service worker served this page (it claims the page once installed, but the
/// headers of a load it did not serve stay as they were).
const controlledAtStart = !!self.navigator?.serviceWorker?.controller;

/// On the CPU on one thread where more would help, what to do about it. The page's service
/// worker makes its own responses cross-origin isolated (www/sw.js), from the load after the
/// one that installed it: then a reload is all it takes.
function threadsAdvice(i) {
  if (i.backend !== "cpu" || i.threads > 1 || !i.threadsNote) return "";
  const isolation = !self.crossOriginIsolated && "serviceWorker" in navigator && !params.has("no-sw") && !controlledAtStart;
  if (isolation) return " Reload the page to compute on every core: from the second visit on, this page is cross-origin isolated, which sharing memory between threads needs.";
  return ` One thread: ${i.threadsNote}.`;
}

const restarts = [];
function engineDied(message, source) {
  state.model = null;
  document.body.dataset.ready = "false";
  setStatus("error", "Engine stopped");
  const what = /^the GPU device was lost/.test(message)
    ? "The GPU" + message.slice("the GPU".length)
    : `${/device|lost|gpu/i.test(message) ? "The GPU device was lost" : "The engine stopped"} (${message})`;
  // Restart automatically, but not in a loop: twice a minute at most.
  const now = Date.now();
  while (restarts.length && now - restarts[0] > 60_000) restarts.shift();
  if (restarts.length >= 2) {
    showError("model-error", `${what}, again. Try the CPU backend, or reload the page.`);
    return;
  }
  restarts.push(now);
  showError("model-error", `${what}. Reloading the model from the offline cache…`);
  setTimeout(() => load(source, `${what}. The engine was restarted and the model reloaded.`), 500);
}

function progressRow(rows, p) {
  if (p.warning) return showError("model-error", p.warning);
  if (p.stage) {
    setStatus("loading", p.stage === "warming" ? "Compiling shaders…" : "Loading weights into the engine…");
    return;
  }
  let row = rows.get(p.file);
  if (!row) {
    row = document.createElement("li");
    row.innerHTML = `<span class="name"><span class="file"></span><span class="why"></span></span><progress max="1" value="0"></progress><span class="bytes"></span>`;
    row.querySelector(".file").textContent = p.file;
    rows.set(p.file, row);
    $("progress").append(row);
  }
  if (p.why) row.querySelector(".why").textContent = p.why;
  row.dataset.file = p.file;
  const bar = row.querySelector("progress");
  if (p.absent) {
    bar.value = 0;
    row.querySelector(".bytes").textContent = "not in this repository";
    row.dataset.done = "absent";
    return;
  }
  const total = Math.max(p.total || 0, p.loaded || 0);
  if (total) bar.value = p.loaded / total;
  else bar.removeAttribute("value");
  const how = p.local
    ? "local file"
    : p.cached
      ? "from offline cache"
      : p.interrupted
        ? "connection dropped, resuming…"
        : p.rate
          ? `${fmtBytes(p.rate)}/s${p.attempt ? ` · resumed (try ${p.attempt + 1})` : ""}`
          : "";
  row.querySelector(".bytes").textContent = `${fmtBytes(p.loaded)}${total ? ` / ${fmtBytes(total)}` : ""}${how ? ` · ${how}` : ""}`;
  row.dataset.done = p.done ? "true" : "false";
  if (p.attempt) row.dataset.resumed = String(p.attempt);
}

function showCache(info) {
  if (!info) return;
  const storage =
    info.quota != null
      ? ` · this site uses ${fmtBytes(info.usage)} of the ${fmtBytes(info.quota)} the browser allows${info.persisted ? ", kept persistently" : info.persisted === false ? " (the browser may clear it when space runs short)" : ""}`
      : "";
  $("cache-text").textContent = info.available
    ? `Offline cache: ${fmtBytes(info.bytes)} in ${info.files} file${info.files === 1 ? "" : "s"}${storage}`
    : "Offline cache: unavailable in this browser mode";
  $("clear-cache").disabled = !info.available || info.files === 0;
}

// ---------- labels ----------

for (const [key, preset] of Object.entries(PRESETS)) $("preset").add(new Option(preset.name, key));
$("preset").add(new Option("Custom", "custom"));
$("preset").addEventListener("change", () => {
  const preset = PRESETS[$("preset").value];
  if (preset) $("labels").value = preset.labels.join("\n");
  $("ensemble-row").hidden = !preset?.templates;
  labelsChanged();
});
$("labels").value = params.get("labels")?.split(",").join("\n") ?? PRESETS.everyday.labels.join("\n");
$("preset").value = params.get("labels") ? "custom" : "everyday";
for (const id of ["labels", "template", "ensemble"]) $(id).addEventListener("input", labelsChanged);
$("labels").addEventListener("input", () => {
  const preset = PRESETS[$("preset").value];
  if (preset && $("labels").value !== preset.labels.join("\n")) {
    $("preset").value = "custom";
    $("ensemble-row").hidden = true;
  }
});
$("top-k").addEventListener("change", rerender);

let labelTimer = null;
function labelsChanged() {
  state.labelsDirty = true;
  clearTimeout(labelTimer);
  labelTimer = setTimeout(applyLabels, 400);
}

function currentLabels() {
  const labels = $("labels").value.split("\n").map((l) => l.trim()).filter(Boolean);
  const preset = PRESETS[$("preset").value];
  const templates = preset?.templates && $("ensemble").checked ? preset.templates : [$("template").value];
  return { labels, templates };
}

/// Embed the labels (only when they or the template changed). Returns false if unusable.
async function applyLabels() {
  if (!state.model) return false;
  const { labels, templates } = currentLabels();
  hideError("labels-error");
  if (labels.length === 0) {
    showError("labels-error", "The label list is empty: write at least one label, one per line.");
    return false;
  }
  if (!templates.every((t) => t.includes("{}"))) {
    showError("labels-error", "The prompt template needs {} where the label goes, e.g. “a photo of a {}.”");
    return false;
  }
  const info = $("labels-info");
  const onProgress = ({ done, total }) => {
    if (total < 1000) return; // only worth showing for big sets (ImageNet × templates)
    const bar = Object.assign(document.createElement("progress"), { max: total, value: done });
    info.replaceChildren(`Embedding labels: ${done.toLocaleString("en")} of ${total.toLocaleString("en")} prompts `, bar);
  };
  onProgress({ done: 0, total: labels.length * templates.length });
  try {
    const out = await state.model.setLabels(labels, templates, { onProgress });
    if (out.superseded) return false; // newer labels are on their way
    state.labelsDirty = false;
    if (out.recomputed !== false) {
      const prompts = labels.length * templates.length;
      const rate = prompts >= 1000 ? ` (${Math.round(prompts / (out.ms / 1000)).toLocaleString("en")} prompts/s)` : "";
      info.textContent = `${labels.length.toLocaleString("en")} label${labels.length === 1 ? "" : "s"} × ${templates.length} template${templates.length === 1 ? "" : "s"} embedded in ${fmtMs(out.ms)}${rate}.`;
      info.dataset.ready = String(prompts);
      reclassifyAll();
    }
    return true;
  } catch (e) {
    showError("labels-error", e.message);
    return false;
  }
}

// ---------- images ----------

$("image-files").addEventListener("change", (e) => {
  const files = Array.from(e.target.files);
  e.target.value = "";
  addFiles(files);
});
const drop = $("dropzone");
for (const ev of ["dragenter", "dragover"]) {
  document.addEventListener(ev, (e) => {
    if (!e.dataTransfer?.types.includes("Files")) return;
    e.preventDefault();
    drop.classList.add("over");
  });
}
for (const ev of ["dragleave", "drop"]) document.addEventListener(ev, () => drop.classList.remove("over"));
document.addEventListener("drop", (e) => {
  if (!e.dataTransfer?.files.length) return;
  e.preventDefault();
  const files = Array.from(e.dataTransfer.files);
  // A dropped model directory's files load the model; anything else is an image.
  if (files.some((f) => ["model.safetensors", "pytorch_model.bin", "model.q8.safetensors"].includes(f.name))) load({ files });
  else addFiles(files);
});
document.addEventListener("paste", (e) => {
  const files = Array.from(e.clipboardData?.files || []);
  if (files.length) addFiles(files);
});

// Samples are fetched once at start, so classifying them later needs no request.
(async () => {
  for (const name of SAMPLES) {
    const url = new URL(`../samples/${name}`, import.meta.url);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sample";
    button.title = `Classify ${name}`;
    const img = new Image();
    img.alt = name;
    button.append(img);
    $("samples").append(button);
    try {
      const blob = await (await fetch(url)).blob();
      state.samples.set(name, new File([blob], name, { type: blob.type }));
      img.src = URL.createObjectURL(blob);
      button.addEventListener("click", () => addFiles([state.samples.get(name)]));
    } catch {
      button.remove();
    }
  }
})();

function addFiles(files) {
  hideError("input-error");
  for (const file of files) {
    const card = resultCard(file);
    $("results").prepend(card.el);
    state.queue.push(card);
  }
  drainQueue();
}

function resultCard(file) {
  const el = document.createElement("article");
  el.className = "result card";
  el.dataset.name = file.name;
  el.dataset.state = "pending";
  el.innerHTML = `<div class="thumb"><img alt=""></div><div class="body"><h3></h3><p class="meta">Waiting for the model…</p><ol class="bars"></ol></div>`;
  el.querySelector("h3").textContent = file.name;
  const img = el.querySelector("img");
  img.src = URL.createObjectURL(file);
  img.onerror = () => el.querySelector(".thumb").classList.add("broken");
  return { el, file, predictions: null };
}

async function drainQueue() {
  if (state.busy || !state.model) return;
  if (state.labelsDirty && !(await applyLabels())) return;
  state.busy = true;
  try {
    while (state.queue.length && state.model) {
      const card = state.queue.shift();
      await classifyCard(card);
    }
  } finally {
    state.busy = false;
  }
}

async function classifyCard(card) {
  card.el.dataset.state = "running";
  card.el.querySelector(".meta").textContent = "Classifying…";
  try {
    const out = await state.model.classify(card.file);
    card.predictions = out.predictions;
    card.ms = out.ms;
    card.el.dataset.state = "done";
    renderCard(card);
  } catch (e) {
    card.el.dataset.state = "error";
    card.el.querySelector(".meta").textContent = "";
    const err = document.createElement("p");
    err.className = "error";
    err.textContent = e.message;
    card.el.querySelector(".bars").replaceChildren();
    card.el.querySelector(".body").append(err);
  }
}

const cards = () => Array.from(document.querySelectorAll("#results .result")).map((el) => el.card).filter(Boolean);

function renderCard(card) {
  card.el.card = card;
  const k = Math.max(1, Number($("top-k").value) || 5);
  renderBars(card.el.querySelector(".bars"), card.predictions.slice(0, k));
  card.el.querySelector(".meta").textContent = `Image encoded and scored in ${Math.round(card.ms)} ms on ${state.model?.backend === "webgpu" ? "WebGPU" : "CPU"}`;
}

function rerender() {
  for (const card of cards()) if (card.predictions) renderCard(card);
}

/// New labels: score every image again (the image encodings are cheap next to a reload).
function reclassifyAll() {
  for (const card of cards()) {
    if (!state.queue.includes(card)) state.queue.push(card);
  }
  drainQueue();
}

function renderBars(list, predictions) {
  list.replaceChildren(
    ...predictions.map((p) => {
      const li = document.createElement("li");
      li.dataset.label = p.label;
      li.dataset.probability = String(p.probability);
      li.dataset.logit = String(p.logit);
      li.style.setProperty("--p", String(p.probability));
      li.innerHTML = `<span class="label"></span><span class="pct"></span>`;
      li.querySelector(".label").textContent = p.label;
      li.querySelector(".pct").textContent = fmtPct(p.probability);
      return li;
    }),
  );
}

// ---------- camera ----------

$("camera-toggle").addEventListener("click", () => (state.camera ? stopCamera() : startCamera()));
$("camera-select").addEventListener("change", () => state.camera && startCamera($("camera-select").value));

async function startCamera(deviceId) {
  hideError("input-error");
  if (!navigator.mediaDevices?.getUserMedia) return showError("input-error", "This browser gives no camera access (a secure https:// or localhost page is needed).");
  stopCamera();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: deviceId ? { deviceId: { exact: deviceId } } : { facingMode: "environment" }, audio: false });
  } catch (e) {
    const why = {
      NotAllowedError: "Camera access was denied. Allow it in the browser's site settings and try again.",
      NotFoundError: "No camera was found on this device.",
      NotReadableError: "The camera is in use by another application.",
      OverconstrainedError: "That camera is not available.",
    }[e.name];
    return showError("input-error", why || `The camera could not start: ${e.message}`);
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play().catch(() => {});
  state.camera = { stream, frames: 0, since: performance.now(), running: true };
  $("camera-view").hidden = false;
  $("camera-toggle").textContent = "Stop camera";
  document.body.dataset.camera = "on";
  await listCameras(stream);
  cameraLoop(state.camera);
}

async function listCameras(stream) {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const current = stream.getVideoTracks()[0]?.getSettings().deviceId;
  const select = $("camera-select");
  select.replaceChildren(...devices.map((d, i) => new Option(d.label || `Camera ${i + 1}`, d.deviceId)));
  if (current) select.value = current;
  select.hidden = devices.length < 2;
}

/// Classify the newest frame whenever the engine is free: frames that arrive while it is
/// busy are skipped, so the view never lags behind the camera.
async function cameraLoop(cam) {
  const video = $("video");
  while (cam.running) {
    if (!state.model || state.busy || video.readyState < 2) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (state.labelsDirty && !(await applyLabels())) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    state.busy = true;
    try {
      const out = await state.model.classify(video);
      if (!cam.running) break;
      const k = Math.max(1, Number($("top-k").value) || 5);
      renderBars($("camera-results"), out.predictions.slice(0, k));
      cam.frames++;
      const seconds = (performance.now() - cam.since) / 1000;
      $("fps").textContent = `${(cam.frames / seconds).toFixed(1)} frames/s · ${Math.round(out.ms)} ms per frame`;
      $("fps").dataset.fps = String(cam.frames / seconds);
      if (seconds > 5) [cam.frames, cam.since] = [0, performance.now()];
    } catch (e) {
      showError("input-error", e.message);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      state.busy = false;
    }
    drainQueue();
    await new Promise((r) => requestAnimationFrame(r));
  }
}

function stopCamera() {
  if (!state.camera) return;
  state.camera.running = false;
  for (const t of state.camera.stream.getTracks()) t.stop();
  state.camera = null;
  $("video").srcObject = null;
  $("camera-view").hidden = true;
  $("camera-toggle").textContent = "Start camera";
  $("fps").textContent = "";
  document.body.dataset.camera = "off";
}

// ---------- helpers ----------

function setStatus(kind, text) {
  $("engine-status").dataset.state = kind;
  $("engine-text").textContent = text;
}

function showError(id, message, actions = []) {
  const el = $(id);
  el.replaceChildren(document.createTextNode(message));
  for (const [label, f] of actions) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ghost";
    b.textContent = label;
    b.addEventListener("click", f);
    el.append(" ", b);
  }
  el.hidden = false;
}

function hideError(id) {
  $(id).hidden = true;
}

function fmtBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${u[i]}`;
}

function fmtMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function fmtPct(p) {
  const v = p * 100;
  return v >= 99.95 ? "100%" : v >= 10 ? `${v.toFixed(1)}%` : v >= 0.1 ? `${v.toFixed(2)}%` : "<0.1%";
}

// Start at once when the model is named in the URL or already cached; otherwise wait for a
// click rather than start a ~600 MB download unasked.
showCache(await cacheInfo().catch(() => null));
const initial = $("model-input").value;
if (params.has("model") || (await isCached(initial).catch(() => false))) load({ model: initial });
else setStatus("idle", "Press Load to download the model (once, then it works offline)");

// ---------- offline ----------

// The page itself (HTML, JS, wasm, samples) is kept by a service worker (sw.js, made at build
// time with the build's file list and version), so it opens with the network off; the model
// files are in the Cache API. A new deployment installs beside the old one and takes over
// when the visitor reloads (offered here) or next opens the page.
if ("serviceWorker" in navigator && !params.has("no-sw")) {
  navigator.serviceWorker
    .register(new URL("../sw.js", import.meta.url), { scope: new URL("../", import.meta.url).pathname })
    .then((reg) => {
      const offer = (worker) => {
        if (!worker || !navigator.serviceWorker.controller) return;
        showError("update", "A new version of webclip is ready.", [
          [
            "Reload to update",
            () => {
              document.body.dataset.swUpdate = "accepted";
              worker.postMessage("skip-waiting");
            },
          ],
        ]);
      };
      offer(reg.waiting);
      reg.addEventListener("updatefound", () => {
        const w = reg.installing;
        w?.addEventListener("statechange", () => w.state === "installed" && offer(w));
      });
    })
    .catch(() => {}); // no service worker (e.g. file://): the page still works online
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (document.body.dataset.swUpdate === "accepted" && !reloading) {
      reloading = true;
      location.reload();
    }
  });
}
