// End-to-end tests of the page in Debian's Chromium, driven by playwright-core, against the
// built page (dist/) served from localhost with the committed tiny model.
//
//   node --test tests/e2e/      (after `trunk build --release`; scripts/test.sh does both)
//
// Chromium here has WebGPU only through SwiftShader (a CPU implementation), so times say
// nothing about GPUs; the numbers must still equal transformers'.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, copyFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const FIX = join(ROOT, "tests/fixtures");
const ARTIFACTS = join(ROOT, "target/e2e");
const PORT = 8765;
const BASE = `http://127.0.0.1:${PORT}`;
const REF = JSON.parse(readFileSync(join(FIX, "reference/tiny-quickgelu.json"), "utf8"));
/// transformers on the values of tiny-quickgelu's 8-bit weights (tests/fixtures/make_q8.py).
const REF_Q8 = JSON.parse(readFileSync(join(FIX, "reference/tiny-quickgelu-q8.json"), "utf8"));
/// The same with the input of every 8-bit Linear quantized as the CPU engine's 8-bit product
/// quantizes it (7 bits per row and block of 32, src/kernels/simd128_q8.rs): what the page
/// computes on the CPU with dtype=q8.
const REF_Q8_A7 = JSON.parse(readFileSync(join(FIX, "reference/tiny-quickgelu-q8-a7.json"), "utf8"));
const PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg"];
const TOL = 1e-3;

const BASE_ARGS = [
  "--no-sandbox",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--disable-features=Translate,OptimizationHints,MediaRouter",
];

let server;
let large;
const serverLog = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // A copy of the tiny model with its weights cut short, for the error test.
  const corrupt = mkdtempSync(join(tmpdir(), "webclip-corrupt-"));
  for (const f of readdirSync(join(FIX, "tiny-quickgelu"))) copyFileSync(join(FIX, "tiny-quickgelu", f), join(corrupt, f));
  const w = readFileSync(join(corrupt, "model.safetensors"));
  writeFileSync(join(corrupt, "model.safetensors"), w.subarray(0, w.length - 1000));

  // ViT-L/14's token embedding (49408 × 768 f32, 152 MB: over WebGPU's 128 MiB default
  // binding) on the tiny model: its text tower widened from 32 to 768, deterministic values.
  large = mkdtempSync(join(tmpdir(), "webclip-l14-embedding-"));
  writeWidenedText(join(FIX, "tiny-quickgelu"), large, 768);

  server = spawn(
    process.execPath,
    [
      join(ROOT, "scripts/serve.mjs"),
      "--port", String(PORT),
      "--root", join(ROOT, "dist"),
      "--model", `tiny=${join(FIX, "tiny-quickgelu")}`,
      "--model", `corrupt=${corrupt}`,
      "--model", `q8=${join(FIX, "tiny-quickgelu-q8")}`,
      "--model", `l14emb=${large}`,
      "--mount", `/e2e/=${join(ROOT, "tests/e2e")}`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise((ok, fail) => {
    server.on("exit", (code) => fail(new Error(`server exited (${code})`)));
    server.stdout.on("data", (d) => {
      for (const line of String(d).split("\n").filter(Boolean)) {
        serverLog.push(line);
        if (line.includes("serving")) ok();
      }
    });
  });
});

after(() => {
  server?.kill();
  if (large) rmSync(large, { recursive: true, force: true });
});

/// `from`'s model with its text tower (hidden size 32) made `hidden` wide: every text tensor's
/// dimension of 32 becomes `hidden`, in f32, filled with small deterministic values (LayerNorm weights
/// near 1), the rest kept as it is. Written as safetensors, tensor by tensor.
function writeWidenedText(from, to, hidden) {
  const config = JSON.parse(readFileSync(join(from, "config.json"), "utf8"));
  const narrow = config.text_config.hidden_size;
  config.text_config.hidden_size = hidden;
  config.text_config.num_attention_heads = hidden / 64;
  writeFileSync(join(to, "config.json"), JSON.stringify(config));
  for (const f of ["preprocessor_config.json", "tokenizer.json"]) {
    try { copyFileSync(join(from, f), join(to, f)); } catch {}
  }
  const file = readFileSync(join(from, "model.safetensors"));
  const headerLen = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLen).toString("utf8"));
  const out = {};
  const parts = [];
  let offset = 0;
  let seed = 1;
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const text = name.startsWith("text_model.") || name === "text_projection.weight";
    const shape = text ? info.shape.map((d) => (d === narrow ? hidden : d)) : info.shape;
    const n = shape.reduce((a, d) => a * d, 1);
    let bytes;
    let dtype = info.dtype;
    if (text && info.dtype.startsWith("F")) {
      dtype = "F32";
      const values = new Float32Array(n);
      const norm = /layer_norm.*weight$/.test(name);
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        values[i] = (norm ? 1 : 0) + ((seed >>> 8) / 16777216 - 0.5) * 0.1;
      }
      bytes = Buffer.from(values.buffer);
    } else {
      bytes = file.subarray(8 + headerLen + info.data_offsets[0], 8 + headerLen + info.data_offsets[1]);
    }
    out[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(out));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(to, "model.safetensors"), Buffer.concat([len, json, ...parts]));
}

async function browser({ webgpu = true, camera = false } = {}) {
  const args = [...BASE_ARGS];
  if (webgpu) args.push("--enable-unsafe-webgpu");
  if (camera) {
    args.push("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-video-capture=${join(FIX, "camera.y4m")}`);
  }
  const b = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args });
  const context = await b.newContext({ viewport: { width: 1280, height: 1000 } });
  if (camera) await context.grantPermissions(["camera"], { origin: BASE });
  const page = await context.newPage();
  const console = [];
  page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.push(`pageerror: ${e.message}`));
  return { b, context, page, console };
}

/// Open the page on the tiny model and wait until it is loaded and warm, and until its
/// service worker has cached the page (so no install traffic overlaps what a test counts).
/// WebGPU is forced: "auto" rightly prefers the CPU to SwiftShader, a software adapter.
async function openLoaded(page, query = "model=/models/tiny/&backend=webgpu") {
  await page.goto(`${BASE}/?${query}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 180_000 });
  await page.evaluate(() => navigator.serviceWorker.ready);
}

async function setLabels(page, labels, topK = labels.length) {
  await page.fill("#top-k", String(topK));
  await page.dispatchEvent("#top-k", "change");
  await page.fill("#labels", labels.join("\n"));
  await page.waitForFunction((n) => document.querySelector("#labels-info").textContent.startsWith(`${n} label`), labels.length, { timeout: 60_000 });
}

async function upload(page, names, dir = join(FIX, "images")) {
  await page.setInputFiles("#image-files", names.map((n) => join(dir, n)));
  await page.waitForFunction(
    (names) => names.every((n) => ["done", "error"].includes(document.querySelector(`#results .result[data-name="${n}"]`)?.dataset.state)),
    names,
    { timeout: 180_000 },
  );
}

/// The probabilities the page shows for one image, by label.
async function shown(page, name) {
  return page.$$eval(`#results .result[data-name="${name}"] .bars li`, (lis) => Object.fromEntries(lis.map((li) => [li.dataset.label, Number(li.dataset.probability)])));
}

function assertMatchesReference(probs, name) {
  assertProbs(probs, REF.images.find((i) => i.path.endsWith(name)).probs, name);
}

/// `probs` (by label) against transformers' probabilities over REF.labels.
function assertProbs(probs, want, what) {
  assert.equal(Object.keys(probs).length, REF.labels.length, `${what}: all labels shown`);
  REF.labels.forEach((label, j) => {
    const diff = Math.abs(probs[label] - want[j]);
    assert.ok(diff <= TOL, `${what} / ${label}: page ${probs[label]} vs transformers ${want[j]} (|diff| ${diff})`);
  });
}

const EXIF = REF.exif.find((e) => e.path.endsWith("exif_orientation8.png"));

describe("webclip page", { concurrency: false }, () => {
  test("WebGPU: adapter present, probabilities equal transformers', cache and privacy", async () => {
    const { b, context, page, console } = await browser();
    try {
      await openLoaded(page);
      assert.equal(await page.getAttribute("body", "data-backend"), "webgpu", console.join("\n"));
      assert.match(await page.textContent("#engine-text"), /WebGPU/);

      // Privacy: from here on, classifying must not touch the network.
      const requests = [];
      context.on("request", (r) => /^https?:/.test(r.url()) && requests.push(r.url()));
      await setLabels(page, REF.labels);
      await upload(page, PHOTOS);
      for (const name of PHOTOS) assertMatchesReference(await shown(page, name), name);
      assert.deepEqual(requests, [], `requests while classifying: ${requests.join(", ")}`);
      await page.screenshot({ path: join(ARTIFACTS, "webgpu.png"), fullPage: true });

      // A photo stored on its side with an EXIF orientation tag is classified upright, as its
      // thumbnail shows it: transformers' numbers for Pillow's exif_transpose of it.
      await upload(page, ["exif_orientation8.png"], join(FIX, "images/odd"));
      assertProbs(await shown(page, "exif_orientation8.png"), EXIF.upright.probs, "exif_orientation8.png (upright)");

      // Cache: a reload loads the model with no request for its files.
      const before = serverLog.length;
      await page.reload();
      await page.waitForSelector("body[data-ready=true]", { timeout: 180_000 });
      const weightRequests = serverLog.slice(before).filter((l) => l.startsWith("GET /models/"));
      assert.deepEqual(weightRequests, [], "model files requested again after a reload");
      assert.match(await page.textContent("#cache-text"), /in [1-9]\d* file/);
      assert.match(await page.textContent("#progress"), /offline cache/);
    } finally {
      await b.close();
    }
  });

  test("CPU fallback without WebGPU gives the same numbers, on both builds of the module (relaxed SIMD, chosen here by default, and baseline SIMD128)", async () => {
    for (const [query, build] of [["", "relaxed"], ["&wasm=baseline", "baseline"]]) {
      const { b, page, console } = await browser({ webgpu: false });
      try {
        await openLoaded(page, `model=/models/tiny/${query}`);
        assert.equal(await page.getAttribute("body", "data-backend"), "cpu", console.join("\n"));
        assert.equal(await page.getAttribute("body", "data-wasm-build"), build, console.join("\n"));
        assert.match(await page.textContent("#engine-text"), build === "relaxed" ? /CPU \(WebAssembly, relaxed SIMD, 1 thread\)/ : /CPU \(WebAssembly SIMD, 1 thread\)/);
        assert.match(await page.textContent("#backend-info"), /Running on the CPU: WebGPU offers no graphics adapter here/);
        await setLabels(page, REF.labels);
        await upload(page, ["chelsea.png", "coffee.png"]);
        for (const name of ["chelsea.png", "coffee.png"]) assertMatchesReference(await shown(page, name), name);
        if (build === "baseline") {
          // A module name that is neither is refused in words, before any worker starts.
          const message = await page.evaluate(() => import("/www/api.js").then(({ loadModel }) => loadModel({ wasmBuild: "fast" })).then(() => "loaded", (e) => e.message));
          assert.match(message, /unknown wasmBuild "fast": use "threads", "relaxed" or "baseline"/);
        }
      } finally {
        await b.close();
      }
    }
  });

  test("threads: the first load runs on one thread and says how to get more; the reload, made cross-origin isolated by the service worker, runs the threaded module on every core with transformers' probabilities", async () => {
    const { b, page, console } = await browser({ webgpu: false });
    try {
      await openLoaded(page, "model=/models/tiny/");
      assert.equal(await page.evaluate(() => self.crossOriginIsolated), false, "the server sends no isolation headers");
      assert.equal(await page.getAttribute("body", "data-wasm-build"), "relaxed", console.join("\n"));
      assert.equal(await page.getAttribute("body", "data-threads"), "1");
      assert.match(await page.textContent("#backend-info"), /Reload the page to compute on every core/);
      // Asked for by name where it cannot run, the threaded module is refused in words.
      const refused = await page.evaluate(() => import("/www/api.js").then(({ loadModel }) => loadModel({ model: "/models/tiny/", wasmBuild: "threads" })).then(() => "loaded", (e) => e.message));
      assert.match(refused, /the threaded build cannot run here: this page is not cross-origin isolated.*Cross-Origin-Opener-Policy: same-origin/);
      // The service worker controls the reload and adds COOP / COEP to the page's responses.
      await page.reload();
      await page.waitForSelector("body[data-ready=true]", { timeout: 180_000 });
      assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, "the service worker made the page cross-origin isolated");
      const cores = await page.evaluate(() => Math.min(8, navigator.hardwareConcurrency));
      assert.equal(await page.getAttribute("body", "data-wasm-build"), cores > 1 ? "threads" : "relaxed", console.join("\n"));
      assert.equal(await page.getAttribute("body", "data-threads"), String(cores));
      if (cores > 1) assert.match(await page.textContent("#engine-text"), new RegExp(`CPU \\(WebAssembly, relaxed SIMD, ${cores} threads\\)`));
      assert.doesNotMatch(await page.textContent("#backend-info"), /Reload the page|One thread/);
      await setLabels(page, REF.labels);
      await upload(page, ["chelsea.png", "coffee.png"]);
      for (const name of ["chelsea.png", "coffee.png"]) assertMatchesReference(await shown(page, name), name);
      // ?threads=1 keeps one thread, by choice, without advice.
      await page.goto(`${BASE}/?model=/models/tiny/&threads=1`);
      await page.waitForSelector("body[data-ready=true]", { timeout: 180_000 });
      assert.equal(await page.getAttribute("body", "data-wasm-build"), "relaxed");
      assert.equal(await page.getAttribute("body", "data-threads"), "1");
      assert.doesNotMatch(await page.textContent("#backend-info"), /Reload the page|One thread/);
    } finally {
      await b.close();
    }
  });

  test("a token embedding of ViT-L/14's size (152 MB, over WebGPU's 128 MiB default binding) loads on WebGPU and gives the CPU's numbers", async () => {
    const labels = REF.labels.slice(0, 5);
    const probs = {};
    for (const backend of ["webgpu", "cpu"]) {
      const { b, page, console } = await browser();
      try {
        await openLoaded(page, `model=/models/l14emb/&backend=${backend}`);
        assert.equal(await page.getAttribute("body", "data-backend"), backend, console.join("\n"));
        await setLabels(page, labels);
        await upload(page, ["chelsea.png"]);
        probs[backend] = await shown(page, "chelsea.png");
        assert.equal(Object.keys(probs[backend]).length, labels.length, console.join("\n"));
      } finally {
        await b.close();
      }
    }
    for (const label of labels) {
      const diff = Math.abs(probs.webgpu[label] - probs.cpu[label]);
      assert.ok(diff <= TOL, `${label}: WebGPU ${probs.webgpu[label]} vs CPU ${probs.cpu[label]}`);
    }
  });

  test("8-bit weights (dtype=q8) equal transformers on their values on WebGPU, and on the CPU (both modules) with the activations quantized as its 8-bit product does; a repository without them says how to make them; f16 where the adapter has none is refused in words", async () => {
    for (const [backend, wasm] of [["webgpu", ""], ["cpu", "relaxed"], ["cpu", "baseline"]]) {
      const { b, page, console } = await browser();
      const ref = backend === "cpu" ? REF_Q8_A7 : REF_Q8;
      try {
        // f16 asked for too: SwiftShader's adapter has no shader-f16, so the page says so and
        // the model computes in f32 (the numbers below hold it to that).
        await openLoaded(page, `model=/models/q8/&backend=${backend}&dtype=q8&precision=f16${wasm && `&wasm=${wasm}`}`);
        assert.equal(await page.getAttribute("body", "data-backend"), backend, console.join("\n"));
        if (wasm) assert.equal(await page.getAttribute("body", "data-wasm-build"), wasm);
        assert.match(await page.textContent("#backend-info"), backend === "webgpu" ? /Not in f16: .* has no shader-f16/ : /Not in f16: f16 runs on a GPU/);
        assert.match(await page.textContent("#model-info"), /model\.q8\.safetensors/);
        await setLabels(page, ref.labels);
        // rocket.jpg: where the 7-bit activations move the probabilities most (9e-3, over TOL),
        // so the CPU's numbers tell the two references apart.
        await upload(page, ["chelsea.png", "coffee.png", "rocket.jpg"]);
        for (const name of ["chelsea.png", "coffee.png", "rocket.jpg"]) {
          assertProbs(await shown(page, name), ref.images.find((i) => i.path.endsWith(name)).probs, `${name} (q8, ${backend} ${wasm})`);
        }
        if (backend === "cpu" && wasm === "baseline") {
          await page.goto(`${BASE}/?model=/models/tiny/&backend=cpu&dtype=q8`);
          await page.waitForSelector("#model-error:not([hidden])", { timeout: 120_000 });
          assert.match(await page.textContent("#model-error"), /has no model\.q8\.safetensors.*webclip convert --dtype q8/);
        }
      } finally {
        await b.close();
      }
    }
  });

  test("camera: predictions appear, keep updating, frames per second shown", async () => {
    const { b, page, console } = await browser({ camera: true });
    try {
      await openLoaded(page);
      await setLabels(page, REF.labels, 3);
      await page.click("#camera-toggle");
      await page.waitForSelector("#camera-results li", { timeout: 60_000 });
      const fps1 = await page.waitForFunction(() => Number(document.querySelector("#fps").dataset.fps) > 0, null, { timeout: 60_000 });
      assert.ok(await fps1.jsonValue());
      const text1 = await page.textContent("#fps");
      await page.waitForFunction((t) => document.querySelector("#fps").textContent !== t, text1, { timeout: 60_000 });
      assert.match(await page.textContent("#fps"), /frames\/s/);
      assert.equal(await page.$$eval("#camera-results li", (l) => l.length), 3);
      await page.screenshot({ path: join(ARTIFACTS, "camera.png"), fullPage: true });
      await page.click("#camera-toggle");
      assert.equal(await page.getAttribute("body", "data-camera"), "off");
    } catch (e) {
      e.message += `\n${console.join("\n")}`;
      throw e;
    } finally {
      await b.close();
    }
  });

  test("errors: corrupt weights, a non-image, empty labels, a lost GPU device — each shown, and the page still works", async () => {
    const { b, page } = await browser();
    try {
      await page.goto(`${BASE}/?model=/models/corrupt/&backend=webgpu`);
      await page.waitForSelector("#model-error:not([hidden])", { timeout: 120_000 });
      assert.match(await page.textContent("#model-error"), /truncated or corrupt/);
      assert.match(await page.textContent("#model-error"), /local files/);

      await page.fill("#model-input", "/models/tiny/");
      await page.click("#load-button");
      await page.waitForSelector("body[data-ready=true]", { timeout: 180_000 });
      await setLabels(page, REF.labels);

      await upload(page, ["not_an_image.png"], join(FIX, "images/odd"));
      assert.match(await page.textContent('#results .result[data-name="not_an_image.png"] .error'), /not an image/i);

      await page.fill("#labels", "  \n ");
      await page.waitForSelector("#labels-error:not([hidden])");
      assert.match(await page.textContent("#labels-error"), /label list is empty/);

      await page.fill("#labels", REF.labels.join("\n"));
      await page.waitForSelector("#labels-error", { state: "hidden" });
      await upload(page, ["chelsea.png"]);
      assertMatchesReference(await shown(page, "chelsea.png"), "chelsea.png");

      // WebGPU device lost (destroyed from inside the engine's worker): the page says so,
      // restarts the engine from the offline cache and classifies again.
      const worker = page.workers().findLast((w) => w.url().endsWith("/www/worker.js"));
      assert.equal(await worker.evaluate(() => self.webclipGpuDevices.length), 1, "the engine's GPU device is watched");
      await worker.evaluate(() => self.webclipGpuDevices[0].destroy());
      await page.waitForFunction(() => /GPU device was lost/.test(document.querySelector("#model-error").textContent), null, { timeout: 60_000 });
      assert.match(await page.textContent("#model-error"), /Reloading the model from the offline cache/);
      await page.waitForSelector("body[data-ready=true]", { timeout: 180_000 });
      assert.match(await page.textContent("#model-error"), /GPU device was lost.*restarted/);
      await upload(page, ["coffee.png"]);
      assertMatchesReference(await shown(page, "coffee.png"), "coffee.png");
    } finally {
      await b.close();
    }
  });

  test("embeddable: the ES module API and <webclip-classifier> on a minimal host page", async () => {
    const { b, page, console } = await browser();
    try {
      await page.goto(`${BASE}/e2e/host.html`);
      await page.waitForFunction(() => window.apiResult || window.apiError, null, { timeout: 180_000 });
      const out = await page.evaluate(() => window.apiResult || { error: window.apiError });
      assert.ok(!out.error, `${out.error}\n${console.join("\n")}`);
      assertMatchesReference(Object.fromEntries(out.predictions.map((p) => [p.label, p.probability])), "chelsea.png");
      const ref = REF;
      const textDiff = Math.max(...out.textEmbedding.map((v, i) => Math.abs(v - ref.text_embeds[0][i])));
      assert.ok(textDiff < 1e-5, `text embedding differs by ${textDiff}`);
      const imageDiff = Math.max(...out.imageEmbedding.map((v, i) => Math.abs(v - ref.images[0].image_embeds[i])));
      assert.ok(imageDiff < 1e-5, `image embedding differs by ${imageDiff}`);

      // Labels: the superseded request says so, progress counts up to labels × templates in
      // several steps, and the ensembled logits of the reference labels equal transformers'.
      const { stale, fresh, progress, ensemble } = out.labels;
      assert.equal(stale.superseded, true, "the first label request was superseded");
      assert.equal(fresh.recomputed, true);
      assert.ok(progress.length >= 2, `progress reported in steps: ${JSON.stringify(progress)}`);
      assert.ok(progress.every(([d, t], i) => t === 324 && (i === 0 || d > progress[i - 1][0])), JSON.stringify(progress));
      assert.deepEqual(progress.at(-1), [324, 324]);
      assert.equal(ensemble.length, 108);
      ref.labels.forEach((label, j) => {
        const got = ensemble.find((p) => p.label === label).logit;
        const diff = Math.abs(got - ref.images[0].ensemble_logits[j]);
        assert.ok(diff <= TOL, `ensemble logit of ${label}: ${got} vs transformers ${ref.images[0].ensemble_logits[j]}`);
      });

      // Files are turned upright as their EXIF orientation says, unless asked not to.
      const exif = await page.evaluate(
        async ({ bytes, labels }) => {
          const blob = new Blob([new Uint8Array(bytes)], { type: "image/png" });
          const probs = async (opts) => Object.fromEntries((await window.model.classify(blob, { labels, ...opts })).predictions.map((p) => [p.label, p.probability]));
          return { upright: await probs({}), raw: await probs({ exifOrientation: false }) };
        },
        { bytes: [...readFileSync(join(FIX, EXIF.path))], labels: REF.labels },
      );
      assertProbs(exif.upright, EXIF.upright.probs, "API, EXIF orientation applied");
      assertProbs(exif.raw, EXIF.raw.probs, "API, exifOrientation: false");

      await page.waitForSelector("webclip-classifier >> li", { timeout: 120_000 });
      const element = await page.$$eval("webclip-classifier >> li", (lis) => lis.map((li) => [li.dataset.label, Number(li.dataset.probability)]));
      assert.equal(element.length, 2);
      const cup = ref.images.find((i) => i.path.endsWith("coffee.png"));
      // Two labels: renormalise the reference over them.
      const [a, c] = [ref.labels.indexOf("cat"), ref.labels.indexOf("cup of coffee")];
      const z = Math.exp(cup.logits[a]) + Math.exp(cup.logits[c]);
      const want = { cat: Math.exp(cup.logits[a]) / z, "cup of coffee": Math.exp(cup.logits[c]) / z };
      for (const [label, p] of element) assert.ok(Math.abs(p - want[label]) <= TOL, `element ${label}: ${p} vs ${want[label]}`);
      await page.screenshot({ path: join(ARTIFACTS, "embed.png"), fullPage: true });
    } finally {
      await b.close();
    }
  });
});
