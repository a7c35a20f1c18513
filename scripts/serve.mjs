// A small static server for the built page (dist/) and local model directories, so webclip
// works with no internet at all. No dependencies: Node's http module.
//
//   node scripts/serve.mjs [--port 8080] [--host 127.0.0.1] [--root dist] [--model NAME=DIR]...
//                          [--mount /PREFIX/=DIR]... [--isolate]
//
// --isolate: send the headers that make the page cross-origin isolated (COOP same-origin,
// COEP require-corp, and CORP cross-origin so other origins may still embed what it serves),
// as a host that can set headers would: the threaded engine runs from the first load.
//
// A model directory (Hugging Face layout) is served at /models/NAME/; open the page with
// ?model=/models/NAME/ to use it. Every request is logged on stdout (the tests read it).

import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const port = Number(opt("port", 8080));
const host = opt("host", "127.0.0.1");
const root = resolve(opt("root", "dist"));
const isolate = args.includes("--isolate");
const mounts = []; // [url prefix ending in "/", directory]
args.forEach((a, i) => {
  if (a !== "--model" && a !== "--mount") return;
  const [name, dir] = args[i + 1].split("=");
  const prefix = a === "--model" ? `/models/${name}/` : name.replace(/\/?$/, "/");
  mounts.push([prefix, resolve(dir)]);
});

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".bmp": "image/bmp",
  ".svg": "image/svg+xml",
  ".safetensors": "application/octet-stream",
  ".bin": "application/octet-stream",
  ".webmanifest": "application/manifest+json",
};

/// The file a URL path maps to, or null when it would leave its directory.
function locate(pathname) {
  let [base, rest] = [root, pathname];
  const mount = mounts.find(([prefix]) => pathname.startsWith(prefix));
  if (mount) [base, rest] = [mount[1], pathname.slice(mount[0].length)];
  const file = normalize(join(base, decodeURIComponent(rest)));
  if (file !== base && !file.startsWith(base + sep)) return null;
  try {
    const st = statSync(file);
    if (st.isDirectory()) return locate(`${pathname.replace(/\/?$/, "/")}index.html`);
    return { file, size: st.size };
  } catch {
    return null;
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  console.log(`${req.method} ${url.pathname}${url.search}`);
  res.setHeader("Access-Control-Allow-Origin", "*");
  if (isolate) {
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    res.setHeader("Cross-Origin-Resource-Policy", "cross-origin");
  }
  const found = req.method === "GET" || req.method === "HEAD" ? locate(url.pathname) : null;
  if (!found) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return;
  }
  res.writeHead(200, {
    "content-type": TYPES[extname(found.file).toLowerCase()] || "application/octet-stream",
    "content-length": String(found.size),
    "cache-control": "no-cache",
  });
  if (req.method === "HEAD") return res.end();
  createReadStream(found.file).pipe(res);
});

server.listen(port, host, () => {
  const at = `http://${host}:${server.address().port}`; // --port 0: any free port
  console.log(`webclip: serving ${root} on ${at}/`);
  for (const [prefix, dir] of mounts) console.log(`webclip: ${dir} at ${at}${prefix}`);
});
