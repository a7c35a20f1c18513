// webclip's wasm matrix-product kernels (src/kernels/simd128.rs and simd128_q8.rs: the CPU's
// Linear layers in the page, f32 and 8-bit) against plain products, in Chromium, as both
// modules of the page are built: SIMD128 (baseline) and relaxed SIMD (fused multiply-add, and
// the 8-bit dot product). Shapes no tile divides: one row, rows past a tile, columns past an
// 8-column panel, K of 1 (32 for 8 bits) and of 3072. Then the threaded module's kernels, on a
// pool of 3 Web Workers in a cross-origin-isolated page: products large enough to be split
// (src/kernels/parallel.rs), at panel counts no thread count divides, against the same plain
// products, and the 8-bit outputs the same bits as the single-threaded modules'.
//
//   tests/simd128/build.sh && node --test tests/e2e/kernel.test.mjs

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const SHAPES = [[1, 1, 1], [1, 7, 3], [3, 5, 9], [4, 8, 8], [5, 33, 17], [6, 64, 16], [13, 300, 130], [50, 768, 2304], [7, 3072, 13], [64, 512, 1536], [2, 48, 37]];
// f32 sums of up to 3072 products, against f64: relative to the largest output.
const BOUND = 3e-6;
// 8 bits: K a multiple of 32; [m, k, n, kind], kind 1 the largest sums the dot products can
// make (every weight ±127, the activations at their blocks' extremes), 2 with all-zero blocks,
// 3 with blocks of activations all of one sign (zero point 0 or 127), 4 with ties to round
// (the zero point and values halfway between two steps).
const Q8_SHAPES = [[1, 32, 1, 0], [1, 64, 7, 0], [2, 32, 8, 0], [3, 96, 9, 0], [4, 64, 16, 0], [5, 160, 13, 0], [13, 320, 130, 2], [50, 768, 2304, 0], [7, 3072, 37, 0], [64, 512, 512, 2], [6, 3072, 24, 1], [5, 64, 17, 1], [9, 256, 40, 3], [3, 128, 11, 4]];
// Integer sums are exact; what is left is the f32 scaling of up to 96 blocks, against f64.
const Q8_BOUND = 2e-6;

test("the SIMD128 kernels (f32 and 8-bit) equal plain products at awkward shapes, in both builds", async () => {
  const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"] });
  try {
    const page = await b.newPage();
    const digests = {};
    for (const build of ["baseline", "relaxed"]) {
      const bytes = [...readFileSync(join(ROOT, "target/simd128-check", `${build}.wasm`))];
      const out = await page.evaluate(async ({ bytes, shapes, q8 }) => {
        const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes));
        const e = instance.exports;
        return {
          relaxed: e.relaxed(),
          errors: shapes.map(([m, k, n]) => e.check(m, k, n)),
          q8: q8.map(([m, k, n, kind]) => e.check_q8(m, k, n, kind)),
          digests: q8.map(([m, k, n, kind]) => e.digest_q8(m, k, n, kind)),
        };
      }, { bytes, shapes: SHAPES, q8: Q8_SHAPES });
      assert.equal(out.relaxed, build === "relaxed" ? 1 : 0, `${build}.wasm is the ${build} build`);
      SHAPES.forEach(([m, k, n], i) => {
        assert.ok(out.errors[i] <= BOUND, `${build}: [${m}, ${k}] · [${k}, ${n}] differs by ${out.errors[i]} (relative), bound ${BOUND}`);
      });
      Q8_SHAPES.forEach(([m, k, n, kind], i) => {
        assert.ok(out.q8[i] <= Q8_BOUND, `${build}, 8 bits: [${m}, ${k}] · [${k}, ${n}] (kind ${kind}) differs by ${out.q8[i]} (relative), bound ${Q8_BOUND}`);
      });
      digests[build] = out.digests;
    }
    // The same integers and the same f32 scaling: the two modules' 8-bit products are the same bits.
    assert.deepEqual(digests.relaxed, digests.baseline, "both modules' 8-bit outputs are bit-identical");
  } finally {
    await b.close();
  }
});

// Past parallel.rs's threshold (2^20 multiply-adds), panel counts 1, 2, 5, 13, 97, 129, 288:
// each split into single panels, some of them part-filled.
const SPLIT_SHAPES = [[1, 1024, 1024], [3, 4096, 5], [5, 2048, 13], [37, 512, 99], [7, 3000, 771], [50, 768, 2304], [2, 4096, 1025], [64, 1024, 40]];
const SPLIT_Q8 = [[1, 2048, 512, 0], [3, 4096, 13, 0], [50, 768, 2304, 0], [7, 3072, 771, 1], [13, 1024, 99, 2], [9, 2048, 40, 3]];
const PORT = 8791;

test("the threaded module's kernels, split over a pool of 3 threads, equal plain products and the single-threaded 8-bit bits", async () => {
  const server = spawn(process.execPath, [join(ROOT, "scripts/serve.mjs"), "--port", String(PORT), "--root", join(ROOT, "target/simd128-check/threads-pkg"), "--isolate"], { stdio: ["ignore", "pipe", "inherit"] });
  const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"] });
  try {
    await new Promise((ok, fail) => {
      server.on("exit", (code) => fail(new Error(`server exited (${code})`)));
      server.stdout.on("data", (d) => String(d).includes("serving") && ok());
    });
    const page = await b.newPage();
    await page.goto(`http://127.0.0.1:${PORT}/index.html`);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, "the page is cross-origin isolated");
    const run = (shapes, q8, pool) =>
      page.evaluate(
        ({ shapes, q8, pool }) =>
          new Promise((resolve) => {
            const w = new Worker("./worker.js", { type: "module" });
            w.onmessage = ({ data }) => resolve(data);
            w.onerror = (e) => resolve({ error: e.message });
            w.postMessage({ shapes, q8, pool });
          }),
        { shapes, q8, pool },
      );
    const out = await run([...SHAPES, ...SPLIT_SHAPES], [...Q8_SHAPES, ...SPLIT_Q8], 3);
    assert.equal(out.error, undefined, out.error);
    assert.equal(out.threads, 3, "the pool has 3 threads");
    assert.equal(out.relaxed, 1, "the threaded module is built with relaxed SIMD");
    [...SHAPES, ...SPLIT_SHAPES].forEach(([m, k, n], i) => {
      assert.ok(out.errors[i] <= BOUND, `threads: [${m}, ${k}] · [${k}, ${n}] differs by ${out.errors[i]} (relative), bound ${BOUND}`);
    });
    [...Q8_SHAPES, ...SPLIT_Q8].forEach(([m, k, n, kind], i) => {
      assert.ok(out.q8[i] <= Q8_BOUND, `threads, 8 bits: [${m}, ${k}] · [${k}, ${n}] (kind ${kind}) differs by ${out.q8[i]} (relative), bound ${Q8_BOUND}`);
    });
    // The split changes who computes a panel, not how: the same bits as the relaxed module's.
    const bytes = [...readFileSync(join(ROOT, "target/simd128-check/relaxed.wasm"))];
    const single = await page.evaluate(async ({ bytes, q8 }) => {
      const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes));
      return q8.map(([m, k, n, kind]) => instance.exports.digest_q8(m, k, n, kind));
    }, { bytes, q8: [...Q8_SHAPES, ...SPLIT_Q8] });
    assert.deepEqual(out.digests, single, "the threaded module's 8-bit outputs are the relaxed module's bits");
  } finally {
    await b.close();
    server.kill();
  }
});
