// Build the npm package from a built site: dist/npm/, packed as dist/webclip-VERSION.tgz.
//
//   node scripts/package.mjs [DIST]   (default: the repository's dist/, as trunk builds it)
//
// The package keeps the site's layout, because the code finds its parts by relative URL:
// www/api.js starts ./worker.js; www/worker.js imports ../webclip.js and fetches
// ../webclip_relaxed_bg.wasm or ../webclip_bg.wasm, or imports the threaded module's
// ../threads/webclip.js. Which files go in is read from those
// references (static imports, re-exports, import() and new URL("…", import.meta.url)),
// starting at the three entry points, so the package carries what the engine needs and
// nothing of the demo page.
// Node's standard library only; `npm` packs.

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("..", import.meta.url));
const dist = resolve(process.argv[2] || join(repo, "dist"));
const out = join(dist, "npm");
const ENTRIES = ["www/api.js", "www/element.js", "www/worker.js"];
// Hand-written types, taken from the source tree (so a dist built before they existed works).
const TYPES = ["www/api.d.ts", "www/element.d.ts"];
// jsDelivr refuses single files above this by default; unpkg has no such limit.
const JSDELIVR_FILE_LIMIT = 20 * 1024 * 1024;

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

// --- The build must be there, and be a build.
const wasmPath = join(dist, "webclip_bg.wasm");
if (!existsSync(wasmPath)) {
  fail(`${wasmPath} is missing: build the site first (trunk build --release, or scripts/serve.sh), or pass the built directory as the argument.`);
}
const wasm = readFileSync(wasmPath);
if (wasm.length < 8 || wasm.readUInt32BE(0) !== 0x0061736d) fail(`${wasmPath} is not a WebAssembly module.`);
for (const f of ["webclip.js", ...ENTRIES]) {
  if (!existsSync(join(dist, f))) fail(`${join(dist, f)} is missing: the build in ${dist} is incomplete.`);
}

// --- The version is the crate's.
const cargo = readFileSync(join(repo, "Cargo.toml"), "utf8");
const pkgSection = /^\[package\]\s*$([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(cargo)?.[1] ?? "";
const version = /^version\s*=\s*"([^"]+)"/m.exec(pkgSection)?.[1];
const license = /^license\s*=\s*"([^"]+)"/m.exec(pkgSection)?.[1];
if (!version) fail("no version in Cargo.toml's [package] section.");

// --- What the entry points reference, transitively.
/// Relative specifiers a module references. Comment lines are dropped first: api.js's header
/// shows an import as an example.
function references(source) {
  const code = source
    .split("\n")
    .filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line))
    .join("\n");
  const patterns = [
    /(?:^|[;}\s])(?:import|export)\s*(?:[\w*${}\s,]+?\s*from\s*)?["']([^"']+)["']/g, // static
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g, // dynamic, literal only
    /new\s+URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g, // assets and workers
  ];
  return patterns.flatMap((re) => [...code.matchAll(re)].map((m) => m[1]));
}

const files = new Set();
const queue = [...ENTRIES];
while (queue.length) {
  const file = queue.shift();
  if (files.has(file)) continue;
  const path = join(dist, file);
  if (!existsSync(path)) fail(`${file} is referenced but missing from ${dist}.`);
  files.add(file);
  if (!file.endsWith(".js")) continue;
  for (const spec of references(readFileSync(path, "utf8"))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) continue; // an absolute URL: not ours to ship
    if (!spec.startsWith("./") && !spec.startsWith("../") && !/^[\w-]+\.\w+$/.test(spec)) {
      fail(`${file} imports "${spec}", a bare specifier: the package has no dependencies to resolve it.`);
    }
    const target = relative(dist, resolve(dirname(path), spec)).split(sep).join("/");
    if (target.startsWith("../")) fail(`${file} references "${spec}", outside the build directory.`);
    queue.push(target);
  }
}
if (!files.has("webclip_bg.wasm") || !files.has("webclip.js")) {
  fail(`the entry points no longer reach webclip.js and webclip_bg.wasm (found: ${[...files].join(", ")}).`);
}

// --- Lay out dist/npm.
rmSync(out, { recursive: true, force: true });
const copy = (from, to) => {
  mkdirSync(dirname(join(out, to)), { recursive: true });
  copyFileSync(from, join(out, to));
};
for (const f of files) copy(join(dist, f), f);
for (const f of TYPES) {
  if (!existsSync(join(repo, f))) fail(`${join(repo, f)} is missing.`);
  copy(join(repo, f), f);
}
const licenses = readdirSync(repo).filter((f) => /^(LICEN[CS]E|COPYING)([-._].*)?$/i.test(f) && statSync(join(repo, f)).isFile());
for (const f of licenses) copy(join(repo, f), f);

const shipped = [...files, ...TYPES].sort();
const pkg = {
  name: "webclip",
  version,
  description: "OpenAI CLIP in the browser: zero-shot image classification and embeddings in a Web Worker, on WebGPU or the CPU (Rust/burn compiled to WebAssembly), matching Hugging Face transformers.",
  keywords: ["clip", "zero-shot", "image-classification", "embeddings", "webgpu", "webassembly", "wasm", "web-worker", "huggingface", "web-component"],
  license: license || "MIT OR Apache-2.0",
  type: "module",
  exports: {
    ".": { types: "./www/api.d.ts", default: "./www/api.js" },
    "./element": { types: "./www/element.d.ts", default: "./www/element.js" },
    "./worker": "./www/worker.js",
    "./webclip_bg.wasm": "./webclip_bg.wasm",
    "./webclip_relaxed_bg.wasm": "./webclip_relaxed_bg.wasm",
    "./threads/*": "./threads/*",
    "./package.json": "./package.json",
  },
  types: "./www/api.d.ts",
  files: shipped,
  sideEffects: ["./www/element.js"],
};
writeFileSync(join(out, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
writeFileSync(join(out, "README.md"), readme(version));

// --- Pack.
let report;
try {
  const json = execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dist], { cwd: out, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  report = JSON.parse(json)[0];
} catch (e) {
  fail(`npm pack failed: ${e.message}`);
}
const tarball = join(dist, report.filename);
const expected = [...shipped, "package.json", "README.md", ...licenses].sort();
const packed = report.files.map((f) => f.path).sort();
if (JSON.stringify(packed) !== JSON.stringify(expected)) {
  fail(`the tarball holds ${packed.join(", ")}; expected ${expected.join(", ")}.`);
}
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
const size = statSync(tarball).size;
console.log(`package: ${tarball} (${size} bytes = ${mb(size)} packed; ${mb(report.unpackedSize)} unpacked; ${report.entryCount} files)`);
for (const f of report.files) console.log(`  ${f.path.padEnd(22)} ${f.size} bytes`);
if (!licenses.length) console.log(`package: no license file in the repository; package.json says ${pkg.license}.`);
if (wasm.length > JSDELIVR_FILE_LIMIT) {
  console.log(`package: note: webclip_bg.wasm is ${mb(wasm.length)}, above jsDelivr's 20 MiB limit for one file: serve it from unpkg or your own host.`);
}

function readme(version) {
  return `# webclip

OpenAI's CLIP in the browser: zero-shot image classification and image / text embeddings,
computed in a Web Worker on WebGPU (or the CPU) by a Rust engine compiled to WebAssembly. The
numbers match Hugging Face transformers. Model weights are downloaded from the Hugging Face hub
once and kept in the page's Cache API for offline use.

## From a CDN

\`\`\`html
<script type="module">
  import { loadModel } from "https://unpkg.com/webclip@${version}/www/api.js";
  const model = await loadModel({ model: "openai/clip-vit-base-patch32", onProgress: console.log });
  const { predictions } = await model.classify(document.querySelector("img"), { labels: ["cat", "dog"] });
</script>

<script type="module" src="https://unpkg.com/webclip@${version}/www/element.js"></script>
<webclip-classifier labels="cat, dog, bird" top-k="3"></webclip-classifier>
\`\`\`

Use the files' full paths (\`…/www/api.js\`), not the package's root URL or a CDN's bundled
form (jsDelivr's \`/+esm\`): the engine finds its worker and its WebAssembly by URL, relative
to these files. jsDelivr serves single files up to 20 MiB, and \`webclip_bg.wasm\` is larger.

## From npm

\`\`\`js
import { loadModel } from "webclip";   // types included
import "webclip/element";              // defines <webclip-classifier>
\`\`\`

## How the parts find each other

\`www/api.js\` starts \`www/worker.js\` (resolved against its own URL), which imports
\`webclip.js\` and fetches \`webclip_bg.wasm\` one level up. Serve the package's files as they
are, with that layout. If a bundler moves or renames them, copy the package (\`www/\`,
\`webclip.js\`, \`webclip_bg.wasm\`) to a static folder and pass
\`loadModel({ workerUrl: "/static/webclip/www/worker.js" })\`.

A worker must come from the page's origin, so when the files are on another origin (a CDN),
api.js starts a same-origin \`blob:\` module worker that imports worker.js by its absolute
URL. The other origin must send CORS headers (public CDNs do).

## Every core on the CPU

Without WebGPU the engine computes on the CPU: on one thread, unless the page is cross-origin
isolated, when it loads the threaded module (\`threads/\`) and spreads the work over every
core (at most 8; \`loadModel({ threads })\` sets it). A page is isolated when its own
response carries

\`\`\`
Cross-Origin-Opener-Policy: same-origin
Cross-Origin-Embedder-Policy: require-corp     (or credentialless)
\`\`\`

With \`require-corp\` the files from other origins must be served with CORS or
\`Cross-Origin-Resource-Policy: cross-origin\`. \`model.info.threads\` says how many threads
run, \`model.info.threadsNote\` why only one.

## Content-Security-Policy

A page without a CSP needs nothing. A page with one, loading webclip from \`https://unpkg.com\`,
adds these sources to its own (\`'self'\` and the rest):

\`\`\`
script-src https://unpkg.com 'wasm-unsafe-eval';
worker-src blob: https://unpkg.com;
connect-src https://unpkg.com https://huggingface.co https://*.huggingface.co https://*.hf.co;
img-src blob:
\`\`\`

- \`script-src\`: the page imports api.js / element.js from the CDN. \`'wasm-unsafe-eval'\`
  lets the worker compile the WebAssembly: a \`blob:\` worker runs under the page's policy.
- \`worker-src\`: \`blob:\` starts the worker; the CDN is needed here too, because a module
  worker's static imports (worker.js and everything it imports) are checked against the
  page's \`worker-src\`, not its \`script-src\` (which only stands in when neither
  \`worker-src\` nor \`child-src\` is given).
- \`connect-src\`: the worker fetches the WebAssembly from the CDN and the model from the hub,
  which redirects large files to hosts such as \`cas-bridge.xethub.hf.co\`,
  \`us.aws.cdn.hf.co\` or \`cdn-lfs.huggingface.co\`; every redirect is checked. A model on
  another host needs that host instead, and the images \`<webclip-classifier src>\` names are
  fetched, so their origin (often \`'self'\`) belongs here too.
- \`img-src blob:\`: only for \`<webclip-classifier>\`, which previews the image from a
  \`blob:\` URL. (Its styles are a constructed stylesheet, which style-src does not govern.)
- The Cache API (the offline copy of the model) is not governed by CSP.

A \`<meta http-equiv="Content-Security-Policy">\` works as well as the header (put it before any
script); nothing here needs the header form. When webclip is served from the page's own
origin, the worker is not a \`blob:\` one and gets its policy from the headers of
\`www/worker.js\`'s own response, not from the page: a server that sends one CSP header with
every file must allow \`'wasm-unsafe-eval'\` and the hub's hosts in it.

## License

${pkg.license}
`;
}
