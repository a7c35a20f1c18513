// webclip vs transformers.js, side by side in one run, in Debian's Chromium, on the same CLIP
// weights: image file -> normalized embedding, and 8 prompts -> embeddings. Each engine is
// loaded, run once cold, then RUNS times; the table shows medians. Run by hand (not in CI):
//
//   (cd scripts/bench && npm install --ignore-scripts)      # transformers.js 4.3.1, pinned
//   python scripts/bench/export_onnx.py MODEL_DIR           # the ONNX files transformers.js loads
//   trunk build --release
//   node scripts/bench/bench.mjs MODEL_DIR [--runs 7] [--rounds 1] [--threads 1] [--q8] [--webgpu [--gpu-runs 3]] [--no-cpu]
//                                          [--only webclip|transformers.js] [--dist DIR] [--perf] [--baseline]
//
// MODEL_DIR is a Hugging Face CLIP directory (e.g. the random-weight ViT-B/32 that
// scripts/parity_real_shapes.py writes). The CPU rows compare webclip's CPU backend (burn
// flex, wasm SIMD128) with onnxruntime-web's wasm backend (SIMD), each on `--threads` threads
// (1 by default). The page is served cross-origin isolated, so both engines may start threads;
// with `--threads` above 1 webclip runs its threaded module, and once more on one thread (the
// relaxed module) for its own speedup. `--webgpu` adds both engines on WebGPU, which
// in headless Chromium without a GPU is SwiftShader, a CPU emulation whose times say nothing
// about GPUs, but whose WebGPU work counts do: for every engine on WebGPU the page and the
// worker count dispatches, submits, pipelines, buffers and bytes written and read back
// (scripts/bench/gpu-counters.js, injected by this script only), per image and per prompt
// batch. `--q8` adds transformers.js's q8 files on the CPU (its default without WebGPU), and
// webclip's model.q8.safetensors (`webclip convert --dtype q8`, which must be in MODEL_DIR) on
// the CPU and, with --webgpu, on WebGPU.
// `--only` runs one engine (webclip alone needs no ONNX files: counting its WebGPU work on a
// tiny model takes seconds); `--dist` serves another build of the app than dist/.
// `--perf` has V8 write /tmp/perf-PID.map, so that Linux `perf` names the JIT and wasm code it
// samples: with a dist/ copy whose webclip_bg.wasm keeps its function names
// (target/wasm-bindgen/release/webclip_bg.wasm, before the build strips them), run
// `perf record -a -F 499 -- sleep 20` during the timed runs, then `perf report --sort sym`.
// `--rounds N` runs the whole plan N times over, one row after another in each round, and pools
// each row's timed runs across the rounds: on a noisy machine the rows then share its quiet
// and its busy minutes, which a ratio between two rows needs (load and first-call figures are
// the first round's).
// `--baseline` adds webclip's CPU on its baseline module (SIMD128 without relaxed SIMD; the
// page loads the relaxed one wherever the browser has it, as Chromium does).
// Results: markdown tables on stdout and target/bench/result.json.

import { execSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";

const ROOT = resolve(import.meta.dirname, "../..");
const require = createRequire(join(ROOT, "package.json"));
const { chromium } = require("playwright-core");

const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
const modelDir = args.find((a, i) => !a.startsWith("--") && !["--runs", "--threads", "--gpu-runs", "--only", "--dist", "--rounds"].includes(args[i - 1]));
const ONLY = opt("only", null);
const DIST = resolve(opt("dist", join(ROOT, "dist")));
if (!modelDir) throw new Error("usage: node scripts/bench/bench.mjs MODEL_DIR [--runs 7] [--threads 1] [--q8] [--webgpu [--gpu-runs 3]] [--no-cpu] [--only webclip|transformers.js] [--dist DIR]");
const RUNS = Number(opt("runs", 7));
const GPU_RUNS = Number(opt("gpu-runs", 3));
const THREADS = Number(opt("threads", 1));
const ROUNDS = Number(opt("rounds", 1));
const PORT = 8790;
const TEXTS = ["cat", "dog", "cup of coffee", "rocket", "astronaut", "bicycle", "red car", "mountain lake"].map((l) => `a photo of a ${l}.`);
const NM = join(ROOT, "scripts/bench/node_modules");

const server = spawn(process.execPath, [
  join(ROOT, "scripts/serve.mjs"), "--port", String(PORT), "--root", DIST,
  "--model", `bench=${resolve(modelDir)}`,
  "--mount", `/bench/=${join(ROOT, "scripts/bench")}`,
  "--mount", `/tjs/=${join(NM, "@huggingface/transformers/dist")}`,
  "--mount", `/ort/=${join(NM, "onnxruntime-web/dist")}`,
  "--mount", `/ortc/=${join(NM, "onnxruntime-common/dist/esm")}`,
  "--isolate",
], { stdio: ["ignore", "pipe", "inherit"] });
await new Promise((ok) => server.stdout.on("data", (d) => String(d).includes("serving") && ok()));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const maxDiff = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
const results = [];
try {
  const flags = ["--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-webgpu"];
  if (args.includes("--perf")) flags.push("--js-flags=--perf-basic-prof");
  const plan = [];
  if (!args.includes("--no-cpu")) {
    plan.push(["runWebclip", { backend: "cpu", threads: THREADS }], ["runTransformersJs", { device: "wasm", threads: THREADS }]);
    if (THREADS > 1) plan.push(["runWebclip", { backend: "cpu", threads: 1 }]);
    if (args.includes("--baseline")) plan.push(["runWebclip", { backend: "cpu", wasmBuild: "baseline", threads: 1 }]);
    if (args.includes("--q8")) {
      plan.push(["runWebclip", { backend: "cpu", dtype: "q8", threads: THREADS }], ["runTransformersJs", { device: "wasm", threads: THREADS, dtype: "q8" }]);
      if (THREADS > 1) plan.push(["runWebclip", { backend: "cpu", dtype: "q8", threads: 1 }]);
    }
  }
  if (args.includes("--webgpu")) {
    plan.push(
      ["runWebclip", { backend: "webgpu", runs: GPU_RUNS }],
      ["runTransformersJs", { device: "webgpu", threads: THREADS, runs: GPU_RUNS }],
    );
    if (args.includes("--q8")) plan.push(["runWebclip", { backend: "webgpu", runs: GPU_RUNS, dtype: "q8" }]);
  }
  if (ONLY) plan.splice(0, plan.length, ...plan.filter(([fn]) => (fn === "runWebclip" ? "webclip" : "transformers.js") === ONLY));
  const counters = readFileSync(join(ROOT, "scripts/bench/gpu-counters.js"), "utf8");
  for (let round = 0; round < ROUNDS; round++) for (const [slot, [fn, extra]] of plan.entries()) {
    // A fresh browser per engine, so neither inherits the other's memory or compiled code.
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: flags });
    try {
      const page = await browser.newPage();
      // Count WebGPU work in the page and in webclip's worker (its script, prefixed).
      await page.addInitScript({ content: counters });
      await page.route("**/www/worker.js", async (route) => {
        const response = await route.fetch();
        await route.fulfill({ response, body: `${counters}\n${await response.text()}` });
      });
      page.on("console", (m) => m.type() === "error" && console.error(`  [${fn}] ${m.text()}`));
      await page.goto(`http://127.0.0.1:${PORT}/bench/bench.html`);
      await page.waitForFunction(() => window.benchReady);
      const config = { model: "/models/bench/", image: "/samples/chelsea.png", texts: TEXTS, runs: RUNS, ...extra };
      const r = await page.evaluate(([fn, config]) => window[fn](config), [fn, config]);
      console.error(`${ROUNDS > 1 ? `round ${round + 1}: ` : ""}${r.engine} ${r.backend}${r.dtype ? ` ${r.dtype}` : ""}${r.threads ? ` ${r.threads}T` : ""}: image ${median(r.imageTimes).toFixed(0)} ms, text ${median(r.textTimes).toFixed(0)} ms`);
      if (round === 0) results.push(r);
      else results[slot].imageTimes.push(...r.imageTimes), results[slot].textTimes.push(...r.textTimes);
    } finally {
      await browser.close();
    }
  }
} finally {
  server.kill();
}

const ref = results[0];
const label = (r) => `${r.backend}${r.dtype && r.dtype !== "fp32" ? ` ${r.dtype}` : ""}${r.threads ? ` (${r.threads} thread${r.threads > 1 ? "s" : ""})` : ""}${r.backend === "cpu" && r.wasmBuild ? ` (${r.wasmBuild} module)` : ""}`;
const rows = results.map((r) => {
  const textDiff = Math.max(...r.textEmbeddings.map((e, i) => maxDiff(e, ref.textEmbeddings[i])));
  return `| ${r.engine} | ${label(r)} | ${(r.loadMs / 1000).toFixed(1)} | ${r.imageFirst.toFixed(0)} | ${median(r.imageTimes).toFixed(0)} | ${Math.min(...r.imageTimes).toFixed(0)} | ${median(r.textTimes).toFixed(0)} | ${maxDiff(r.imageEmbedding, ref.imageEmbedding).toExponential(1)} | ${textDiff.toExponential(1)} |`;
});
// WebGPU work: per image and per batch of 8 prompts (a warm call), and what load + the
// first calls created.
const mb = (b) => (b / 1e6).toFixed(b < 1e6 ? 3 : 1);
const gpuRows = results
  .filter((r) => r.backend === "webgpu")
  .flatMap((r) => [
    ["image", r.imageWork],
    ["8 prompts", r.textWork],
  ].map(([what, w]) => `| ${r.engine} | ${what} | ${w.dispatches} | ${w.submits} | ${w.pipelines} | ${w.buffers} | ${mb(w.bytesWritten)} | ${w.readBacks} | ${mb(w.bytesRead)} |`)
    .concat([`| ${r.engine} | load + first image + first prompts | ${r.loadWork.dispatches + r.imageFirstWork.dispatches + r.textFirstWork.dispatches} | ${r.loadWork.submits + r.imageFirstWork.submits + r.textFirstWork.submits} | ${r.loadWork.pipelines + r.imageFirstWork.pipelines + r.textFirstWork.pipelines} | ${r.loadWork.buffers + r.imageFirstWork.buffers + r.textFirstWork.buffers} | ${mb(r.loadWork.bytesWritten + r.imageFirstWork.bytesWritten + r.textFirstWork.bytesWritten)} | ${r.loadWork.readBacks + r.imageFirstWork.readBacks + r.textFirstWork.readBacks} | ${mb(r.loadWork.bytesRead + r.imageFirstWork.bytesRead + r.textFirstWork.bytesRead)} |`]));
const table = [
  `${execSync("/usr/bin/chromium --version", { stdio: ["ignore", "pipe", "ignore"] }).toString().trim()}, ${RUNS} runs (WebGPU: ${GPU_RUNS}) after a cold one${ROUNDS > 1 ? `, ${ROUNDS} rounds pooled` : ""}, model ${modelDir}`,
  "",
  "| engine | backend | load (s) | first image (ms) | image, median (ms) | image, best (ms) | 8 prompts, median (ms) | image embedding vs first row | text embeddings vs first row |",
  "|---|---|---|---|---|---|---|---|---|",
  ...rows,
  ...(gpuRows.length
    ? [
        "",
        "| engine | WebGPU work | dispatches | submits | pipelines created | buffers created | MB written | read-backs | MB read back |",
        "|---|---|---|---|---|---|---|---|---|",
        ...gpuRows,
      ]
    : []),
].join("\n");
console.log(table);
// Which kernels the dispatches of one image go to: the entry points' names, without the
// type and hash suffixes cubecl gives its variants (kernel_binop_c_f32_n_4_a68b8a0f: binop).
const family = (name) => name.replace(/_[0-9a-f]{8}$/, "").replace(/_(c|t|e|f|in|lhs)_.*$/, "").replace(/^kernel_|_kernel$|_entry$/g, "");
for (const r of results.filter((r) => r.backend === "webgpu")) {
  const groups = {};
  for (const [k, n] of Object.entries(r.imageWork.byKernel ?? {})) groups[family(k)] = (groups[family(k)] ?? 0) + n;
  const top = Object.entries(groups).sort((a, b) => b[1] - a[1]);
  console.log(`\n${r.engine}, dispatches per image by kernel: ${top.map(([k, n]) => `${k} ${n}`).join(", ")}`);
}
mkdirSync(join(ROOT, "target/bench"), { recursive: true });
writeFileSync(join(ROOT, "target/bench/result.json"), JSON.stringify({ runs: RUNS, gpuRuns: GPU_RUNS, rounds: ROUNDS, results: results.map(({ imageEmbedding, textEmbeddings, ...r }) => r) }, null, 1));
