// wasm timings in Chromium (Debian's, through the webclip checkout's playwright-core):
//   node run-chromium.mjs A.wasm [B.wasm ...]
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
const require = createRequire(join(resolve(import.meta.dirname, "../../.."), "package.json"));
const { chromium } = require("playwright-core");
const shapes = [
  ["vision qkv", 50, 768, 2304], ["vision out_proj", 50, 768, 768], ["vision fc1", 50, 768, 3072],
  ["vision fc2", 50, 3072, 768], ["text qkv (8 prompts)", 64, 512, 1536], ["text fc1", 64, 512, 2048],
  ["text fc2", 64, 2048, 512], ["last layer fc1 (1 row)", 1, 768, 3072],
];
const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"] });
const page = await b.newPage();
// ENGINES=3,6 (engine numbers as in src/lib.rs's `time`): only those, in a short table.
if (process.env.ENGINES) {
  const engines = process.env.ENGINES.split(",").map(Number);
  for (const file of process.argv.slice(2)) {
    const bytes = [...readFileSync(file)];
    const rows = await page.evaluate(async ({ bytes, shapes, engines }) => {
      const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes), { env: { now: () => performance.now() } });
      const { bench, diff } = instance.exports;
      const best = (m, k, n, e) => Math.min(...[0, 1, 2, 3, 4].map(() => bench(m, k, n, e, 7, 10)));
      return shapes.map(([name, m, k, n]) => [name, m, k, n, ...engines.map((e) => best(m, k, n, e)), ...engines.map((e) => diff(m, k, n, e))]);
    }, { bytes, shapes, engines });
    console.log(`\n${file}\n| shape | ${engines.map((e) => `engine ${e}`).join(" | ")} | ${engines.map((e) => `diff ${e}`).join(" | ")} |`);
    for (const [name, m, k, n, ...t] of rows) console.log(`| ${name} ${m}×${k}×${n} | ${t.slice(0, engines.length).map((x) => `${x.toFixed(3)} ms`).join(" | ")} | ${t.slice(engines.length).map((x) => x.toExponential(1)).join(" | ")} |`);
  }
  await b.close();
  process.exit(0);
}
for (const file of process.argv.slice(2)) {
  const bytes = [...readFileSync(file)];
  const rows = await page.evaluate(async ({ bytes, shapes }) => {
    const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes), { env: { now: () => performance.now() } });
    const { bench, diff } = instance.exports;
    return shapes.map(([name, m, k, n]) => [name, m, k, n, ...[0, 1, 2, 3, 4, 5].map((e) => bench(m, k, n, e, 9, 5)), Math.max(diff(m, k, n, 2), diff(m, k, n, 3)), diff(m, k, n, 4), diff(m, k, n, 5)]);
  }, { bytes, shapes });
  console.log(`\n${file}\n| shape (M×K×N) | gemm | rten, packed per call | rten, pre-packed | webclip's SIMD128 kernel | 8-bit prototype | 8-bit, relaxed dot (relaxed module only; else rten again) | max diff (f32) | max diff (8-bit) | max diff (8-bit relaxed) |\n|---|---|---|---|---|---|---|---|---|---|`);
  for (const [name, m, k, n, ...t] of rows) { const d7 = t.pop(); const d8 = t.pop(); const d = t.pop(); console.log(`| ${name} ${m}×${k}×${n} | ${t.map((x) => `${x.toFixed(3)} ms`).join(' | ')} | ${d.toExponential(1)} | ${d8.toExponential(1)} | ${d7.toExponential(1)} |`); }
}
await b.close();
