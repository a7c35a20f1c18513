// trunk post-build hook (after strip-wasm-names.mjs): write the service worker to the site's
// root as sw.js — www/sw.js, after a line defining BUILD = {version, files}: every file the
// page needs offline, and a hash of their contents as the version, so each deployment that
// changes anything gets a new worker and a new cache, and one that changes nothing does not.
//
//   node scripts/build-sw.mjs [DIR]   (default: $TRUNK_STAGING_DIR, else dist)

import { createHash } from "node:crypto";
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";

const dir = process.argv[2] || process.env.TRUNK_STAGING_DIR || "dist";
// Not needed offline: the worker's own source (written to the root instead), the odd test
// images trunk copies with the samples, and the npm package, if one was built into dist.
const skip = (path) => path === "sw.js" || path === "www/sw.js" || path.startsWith("samples/odd/") || path.startsWith("npm/") || path.endsWith(".tgz");

function walk(d) {
  return readdirSync(d).flatMap((name) => {
    const p = join(d, name);
    return statSync(p).isDirectory() ? walk(p) : [relative(dir, p).split(sep).join("/")];
  });
}

const files = walk(dir).filter((f) => !skip(f)).sort();
const hash = createHash("sha256");
for (const f of files) hash.update(f).update("\0").update(readFileSync(join(dir, f))).update("\0");
const version = hash.digest("hex").slice(0, 16);
const source = readFileSync(new URL("../www/sw.js", import.meta.url), "utf8");
// The worker's relaxed-SIMD probe, so the service worker caches the module the worker loads.
const features = readFileSync(new URL("../www/features.js", import.meta.url), "utf8");
const relaxedSimdProbe = /const RELAXED_SIMD = "([A-Za-z0-9+/=]+)";/.exec(features)?.[1];
if (!relaxedSimdProbe) throw new Error("build-sw: www/features.js no longer defines RELAXED_SIMD");
writeFileSync(join(dir, "sw.js"), `const BUILD = ${JSON.stringify({ version, files, relaxedSimdProbe })};\n${source}`);
rmSync(join(dir, "www/sw.js"), { force: true });
console.log(`build-sw: sw.js for build ${version}, ${files.length} files`);
