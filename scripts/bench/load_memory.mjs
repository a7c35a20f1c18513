// How much memory loading a model takes in the page: the peak resident size of Chromium's
// renderer processes (the page and its worker live in one) while the built page (dist/)
// loads a local model directory, then classifies one photo; twice, as a visitor's first visit
// (downloading, and filling the offline cache) and second (from the cache). By hand, not in CI:
//
//   node scripts/bench/load_memory.mjs MODEL_DIR [--backend cpu|webgpu] [--dtype q8] [--port 8790]
//
// MODEL_DIR is a Hugging Face layout (model.safetensors or pytorch_model.bin; with --dtype q8,
// model.q8.safetensors). Prints, for each visit, the load time, the peak and final renderer
// RSS, the page's private memory, and on WebGPU the GPU process's (where SwiftShader keeps the
// buffers), after loading and after the photo, with the weights file's size for scale.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const dir = resolve(args.find((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--")) || "");
const backend = opt("backend", "cpu");
const port = Number(opt("port", 8790));
const dtype = opt("dtype", "auto");
const weights = (dtype === "q8" ? ["model.q8.safetensors"] : ["model.safetensors", "pytorch_model.bin"]).find((f) => existsSync(join(dir, f)));
if (!weights) throw new Error(`${dir} holds no ${dtype === "q8" ? "model.q8.safetensors" : "model.safetensors or pytorch_model.bin"}`);

const server = spawn(process.execPath, [join(ROOT, "scripts/serve.mjs"), "--port", String(port), "--root", join(ROOT, "dist"), "--model", `m=${dir}`], { stdio: ["ignore", "pipe", "inherit"] });
await new Promise((ok) => server.stdout.on("data", (d) => String(d).includes("serving") && ok()));

/// Resident memory (bytes) of Chromium's renderer processes: `rss`, summed over all of them
/// (it counts the shared library pages once per process), and `anon`, the private anonymous
/// memory of the largest one (the page's: its JS and wasm heaps, with the worker's).
function rendererMemory() {
  let rss = 0;
  let anon = 0;
  let gpu = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const status = () => readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status())?.[1] ?? 0) * 1024;
      if (cmd.includes("chromium") && cmd.includes("--type=gpu-process")) gpu = Math.max(gpu, kb("RssAnon"));
      if (!cmd.includes("chromium") || !cmd.includes("--type=renderer")) continue;
      rss += kb("VmRSS");
      anon = Math.max(anon, kb("RssAnon"));
    } catch {
      // the process ended meanwhile
    }
  }
  return { rss, anon, gpu };
}
const rendererRss = () => rendererMemory().rss;

const flags = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
if (backend === "webgpu") flags.push("--enable-unsafe-webgpu");
// A profile on disk, as a visitor has (playwright's default contexts keep storage in memory).
const profile = mkdtempSync(join(tmpdir(), "webclip-profile-"));
const browser = await chromium.launchPersistentContext(profile, { executablePath: "/usr/bin/chromium", headless: true, args: flags });
let peak = 0;
let peakAnon = 0;
let peakGpu = 0;
const sampler = setInterval(() => {
  const m = rendererMemory();
  peak = Math.max(peak, m.rss);
  peakAnon = Math.max(peakAnon, m.anon);
  peakGpu = Math.max(peakGpu, m.gpu);
}, 100);
/// One visit of the page: load the model (downloaded, or from the offline cache the first
/// visit filled), classify a photo; the peaks and what stays, after loading and after the photo.
async function visit(label) {
  await new Promise((r) => setTimeout(r, 1000)); // the previous page's renderer has gone
  peak = peakAnon = peakGpu = 0;
  const page = await browser.newPage();
  const t0 = Date.now();
  await page.goto(`http://127.0.0.1:${port}/?model=/models/m/&backend=${backend}&dtype=${dtype}&no-sw`);
  // Ready, or failed ("No model"); a warning (say, storage full) is shown and loading goes on.
  await page.waitForFunction(() => document.body.dataset.ready === "true" || document.querySelector("#engine-status").dataset.state === "error", null, { timeout: 1_800_000 });
  const error = await page.$eval("#model-error", (e) => (e.hidden ? "" : e.textContent));
  if (!(await page.$("body[data-ready=true]"))) throw new Error(error);
  if (error) console.log(`note: ${error}`);
  const loadS = (Date.now() - t0) / 1000;
  const loaded = { peak, peakAnon, peakGpu, after: rendererMemory() };
  await page.setInputFiles("#image-files", [join(ROOT, "tests/fixtures/images/chelsea.png")]);
  await page.waitForSelector('#results .result[data-state="done"]', { timeout: 600_000 });
  const top = await page.$eval("#results .result .bars li", (li) => `${li.dataset.label} ${Number(li.dataset.probability).toFixed(3)}`);
  const x = (n) => `${gb(n)} (${(n / size).toFixed(2)}×)`;
  const now = rendererMemory();
  console.log(`${label}: ${weights} (${gb(size)}) on ${backend}, loaded in ${loadS.toFixed(1)} s; top: ${top}`);
  console.log(`  loading:   renderer RSS peak ${x(loaded.peak)}, after ${x(loaded.after.rss)}; page private peak ${x(loaded.peakAnon)}, after ${x(loaded.after.anon)}${backend === "webgpu" ? `; GPU process private peak ${gb(loaded.peakGpu)}, after ${gb(loaded.after.gpu)}` : ""}`);
  console.log(`  + 1 photo: renderer RSS peak ${x(peak)}, after ${x(now.rss)}; page private peak ${x(peakAnon)}, after ${x(now.anon)}${backend === "webgpu" ? `; GPU process private peak ${gb(peakGpu)}, after ${gb(now.gpu)}` : ""}`);
  await page.close();
}
const size = statSync(join(dir, weights)).size;
const gb = (n) => `${(n / 1e9).toFixed(2)} GB`;
try {
  await visit("first visit (downloaded)");
  await visit("second visit (offline cache)");
} finally {
  clearInterval(sampler);
  await browser.close();
  server.kill();
  rmSync(profile, { recursive: true, force: true });
}
