// Runs the threaded kernel check (tests/e2e/kernel.test.mjs) off the page's main thread, where
// rayon's threads may block: {shapes, q8, pool} in, the same results as the single-threaded
// modules' out (or {error}).
import init, { initThreadPool } from "./simd128_check.js";

self.onmessage = async ({ data: { shapes, q8, pool } }) => {
  try {
    const e = await init();
    await initThreadPool(pool);
    self.postMessage({
      threads: e.threads(),
      relaxed: e.relaxed(),
      errors: shapes.map(([m, k, n]) => e.check(m, k, n)),
      q8: q8.map(([m, k, n, kind]) => e.check_q8(m, k, n, kind)),
      digests: q8.map(([m, k, n, kind]) => e.digest_q8(m, k, n, kind)),
    });
  } catch (e) {
    self.postMessage({ error: String(e?.stack || e) });
  }
};
