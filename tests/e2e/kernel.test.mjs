// webclip's wasm matrix-product kernel (src/kernels/simd128.rs: the CPU's Linear layers in the
// page) against a plain f64 product, in Chromium, as both modules of the page are built:
// SIMD128 (baseline) and relaxed SIMD (fused multiply-add). Shapes no tile divides: one row,
// rows past a 4-row tile, columns past an 8-column panel, K of 1 and of 3072.
//
//   tests/simd128/build.sh && node --test tests/e2e/kernel.test.mjs

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const SHAPES = [[1, 1, 1], [1, 7, 3], [3, 5, 9], [4, 8, 8], [5, 33, 17], [6, 64, 16], [13, 300, 130], [50, 768, 2304], [7, 3072, 13], [64, 512, 1536], [2, 48, 37]];
// f32 sums of up to 3072 products, against f64: relative to the largest output.
const BOUND = 3e-6;

test("the SIMD128 kernel equals a plain product at awkward shapes, in both builds", async () => {
  const b = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"] });
  try {
    const page = await b.newPage();
    for (const build of ["baseline", "relaxed"]) {
      const bytes = [...readFileSync(join(ROOT, "target/simd128-check", `${build}.wasm`))];
      const out = await page.evaluate(async ({ bytes, shapes }) => {
        const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes));
        return { relaxed: instance.exports.relaxed(), errors: shapes.map(([m, k, n]) => instance.exports.check(m, k, n)) };
      }, { bytes, shapes: SHAPES });
      assert.equal(out.relaxed, build === "relaxed" ? 1 : 0, `${build}.wasm is the ${build} build`);
      SHAPES.forEach(([m, k, n], i) => {
        assert.ok(out.errors[i] <= BOUND, `${build}: [${m}, ${k}] · [${k}, ${n}] differs by ${out.errors[i]} (relative), bound ${BOUND}`);
      });
    }
  } finally {
    await b.close();
  }
});
