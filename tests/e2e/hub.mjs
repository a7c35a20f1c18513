// A local double of the Hugging Face Hub for the browser end-to-end tests: no network, no npm
// dependencies, only Node's standard library (and the `openssl` CLI for the certificate).
//
//   const { key, cert } = await makeCertificate(dir);
//   const hub = await startHub({ repos, cert: { key, cert } });
//   chromium.launch({ args: ["--ignore-certificate-errors", `--host-resolver-rules=${hub.hostRules}`] });
//   ... page fetches https://huggingface.co/owner/name/resolve/main/config.json ...
//   await hub.close();
//
// Two HTTPS servers listen on 127.0.0.1 only: the "hub" (https://huggingface.co) and the "cdn"
// (https://cas-bridge.xethub.hf.co, where the hub redirects large files). Chromium reaches them
// under their real names through `--host-resolver-rules`, so page origins, CORS and redirects are
// the ones the app meets in production.
//
// What it imitates, and where that was seen (recorded responses of the real hub, 2025-2026):
// - Resolve of a regular (git) file answers 307 with a RELATIVE Location to a same-host
//   `/api/resolve-cache/models/{repo}/{commit}/{file}?…&etag=…`, which answers 200 (seen in
//   huggingface_hub and transformers logs since 2026; olah issue #52, hf-hub's relative-redirect
//   bug). `resolveCache: false` serves the 200 at the resolve URL instead (the older behaviour).
// - Resolve of an LFS file answers 302 to a signed `https://cas-bridge.xethub.hf.co/xet-bridge-us/…`
//   URL, with X-Repo-Commit, X-Linked-Size, X-Linked-Etag (sha256 of the content, quoted),
//   X-Xet-Hash and a Link header; the CDN's own ETag is the Xet hash, NOT the sha256.
// - CORS on the hub: Access-Control-Allow-Origin echoes the request's Origin (https://huggingface.co
//   when there is none), `Vary: Origin`, Access-Control-Max-Age 86400, and the Expose-Headers list
//   below. The preflight reflects the requested method and headers (hub-docs issue #1889).
// - CORS on the CDN: `Access-Control-Allow-Origin: *` and the Allow/Expose lists below
//   (huggingface/datasets issue #7931, headers of a cas-bridge response of 2026-01-09).
// - Errors (anonymous): missing or private repo → 401 with X-Error-Message "Invalid username or
//   password." and NO X-Error-Code; gated repo → 401 X-Error-Code GatedRepo; unknown revision →
//   404 RevisionNotFound; missing file → 404 EntryNotFound (with X-Repo-Commit). With an
//   Authorization header: missing repo → 404 RepoNotFound, gated → 403 GatedRepo.
// - Small text files may come gzip-encoded (CloudFront in front of the hub; huggingface_hub issue
//   #3269 shows `Content-Encoding: gzip`, a weak ETag and `Vary: Origin,accept-encoding`).
//
// Not imitated: HTTP/2 (both servers speak HTTP/1.1), rate limits, the /api JSON endpoints,
// tokens that grant access.

import { execFile } from "node:child_process";
import { createHash, createHmac, createPublicKey, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:https";
import { basename, extname, join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";

const run = promisify(execFile);

/// Real host names the two servers stand for. The hub also answers for hf.co; the CDN for the
/// other names large files have been redirected to over the years.
export const HUB_HOSTS = ["huggingface.co", "hf.co"];
export const CDN_HOSTS = ["cas-bridge.xethub.hf.co", "us.aws.cdn.hf.co", "cdn-lfs.hf.co", "cdn-lfs-us-1.hf.co"];

/// The hub's Access-Control-Expose-Headers, verbatim from its responses (2025-2026).
const HUB_EXPOSE = "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash";
/// The CDN's lists, verbatim from a cas-bridge response (datasets issue #7931).
const CDN_EXPOSE = "Accept-Ranges, Content-Range, Content-Type, Content-Disposition, ETag, X-Cache";
const CDN_ALLOW_HEADERS = "Content-Range, Content-Type, Content-Disposition, ETag";
/// What the double allows in a preflight when the request names no headers.
const DEFAULT_ALLOW_HEADERS = "Range, If-Range, If-None-Match, If-Match, Content-Type, Authorization";

/// Extensions the hub's default .gitattributes sends to LFS.
const LFS_EXTENSIONS = new Set([".bin", ".safetensors", ".h5", ".msgpack", ".onnx", ".pt", ".pth", ".ckpt", ".gguf", ".npy", ".npz", ".tflite", ".ot", ".model", ".pkl", ".pickle", ".zip", ".gz", ".tar", ".tgz", ".wasm", ".parquet", ".arrow"]);
const TEXT_EXTENSIONS = new Set([".json", ".txt", ".md", ".py", ".yaml", ".yml", ".csv", ".gitattributes", ".jinja"]);
const MB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Certificate

/// A self-signed certificate for the hub's and the CDN's names, made with the openssl CLI and
/// kept in `dir` (reused when already there). Chromium is told to accept it with
/// `--ignore-certificate-errors`, or with `--ignore-certificate-errors-spki-list=${spki}`.
export async function makeCertificate(dir) {
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, "hub-key.pem");
  const certPath = join(dir, "hub-cert.pem");
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    const names = [...HUB_HOSTS, "*.hf.co", "*.huggingface.co", ...CDN_HOSTS, "localhost"];
    const san = [...names.map((n) => `DNS:${n}`), "IP:127.0.0.1"].join(",");
    await run("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", keyPath, "-out", certPath, "-days", "30", "-subj", "/CN=huggingface.co",
      "-addext", `subjectAltName=${san}`, "-addext", "extendedKeyUsage=serverAuth",
    ]);
  }
  const key = readFileSync(keyPath, "utf8");
  const cert = readFileSync(certPath, "utf8");
  const spki = createHash("sha256").update(createPublicKey(key).export({ type: "spki", format: "der" })).digest("base64");
  return { key, cert, spki, keyPath, certPath };
}

// ---------------------------------------------------------------------------------------------
// Files

const fileCache = new Map(); // absolute path -> entry (re-read when size or mtime change)
const byXetHash = new Map(); // xet hash -> entry, for the CDN

/// Bytes and hashes of one repository file. `spec` is a path or `{ path, lfs }`.
function loadFile(name, spec) {
  const path = typeof spec === "string" ? spec : spec.path;
  const st = statSync(path);
  const stamp = `${st.size}:${st.mtimeMs}`;
  let entry = fileCache.get(path);
  if (!entry || entry.stamp !== stamp) {
    const bytes = readFileSync(path);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    entry = {
      path, stamp, bytes, size: bytes.length, sha256,
      // A git blob id: what the hub sends as the ETag of a regular file.
      gitSha1: createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex"),
      // Stand-in for the Xet content hash (a different 64-hex value from the sha256, as on the hub).
      xetHash: createHash("sha256").update("xet\0").update(bytes).digest("hex"),
      gz: null,
    };
    fileCache.set(path, entry);
    byXetHash.set(entry.xetHash, entry);
  }
  const ext = extname(name).toLowerCase();
  let lfs;
  if (typeof spec === "object" && typeof spec.lfs === "boolean") lfs = spec.lfs;
  else if (LFS_EXTENSIONS.has(ext)) lfs = true;
  // Text files stay in git up to the hub's 10 MB limit for non-LFS files; others from 1 MB.
  else if (TEXT_EXTENSIONS.has(ext)) lfs = entry.size >= 10 * MB;
  else lfs = entry.size >= MB;
  return { ...entry, name, lfs, text: TEXT_EXTENSIONS.has(ext) };
}

function gzipped(entry) {
  const cached = fileCache.get(entry.path);
  if (cached && cached.stamp === entry.stamp) return (cached.gz ??= gzipSync(cached.bytes));
  return gzipSync(entry.bytes);
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

const requestId = () => `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString("hex")}`;

/// Express's weak ETag for a body it generates (the hub sets one on its error pages).
const expressEtag = (body) => `W/"${Buffer.byteLength(body).toString(16)}-${createHash("sha1").update(body).digest("base64").slice(0, 27)}"`;

const contentDisposition = (name) => {
  const file = basename(name);
  return `inline; filename*=UTF-8''${encodeURIComponent(file)}; filename="${file.replace(/["\\]/g, "_")}";`;
};

/// `bytes=N-`, `bytes=N-M` or `bytes=-S` against `size`: {start, end} (inclusive), "unsatisfiable",
/// or null for no (or an unusable) Range. Several ranges are ignored, as S3 does.
function parseRange(header, size) {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start, end;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== "" && Number(m[2]) < start) return null;
  }
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

const opaque = (tag) => tag.trim().replace(/^W\//, "");
/// If-None-Match uses the weak comparison (RFC 9110 §13.1.2).
const noneMatch = (header, etag) => !!header && header.split(",").some((t) => t.trim() === "*" || opaque(t) === opaque(etag));
/// If-Range needs a strong validator that is equal byte for byte (RFC 9110 §13.1.5); a date or a
/// weak ETag never matches, so the whole representation is sent.
const ifRangeMatches = (header, etag) => !header.trim().startsWith("W/") && !etag.startsWith("W/") && header.trim() === etag;

// ---------------------------------------------------------------------------------------------
// The servers

/**
 * Starts the hub and the CDN on 127.0.0.1 (ephemeral ports).
 *
 * repos: { "owner/name": { gated?: bool, private?: bool,
 *          revisions: { "main": { commit: "<40 hex>", files: { "config.json": "/abs/path" | { path, lfs } } } } } }
 * cert:  { key, cert } (PEM), e.g. from makeCertificate.
 * log:   a function given one line per request, or true for console.log.
 * options (all optional):
 *   resolveCache: true      small files go through the hub's 307 to /api/resolve-cache/… (as now);
 *                           false serves them with 200 at the resolve URL.
 *   gzip: "length"          gzip small files when the request accepts it, with Content-Length =
 *                           compressed length (as GitHub Pages and many CDNs); "chunked": no
 *                           Content-Length (as recorded from the hub's CloudFront); "off".
 *   gzipMinBytes: 0         smallest file that is compressed (CloudFront itself: 1000).
 *   cdnPreflight: "ok"      the CDN's OPTIONS allows whatever is asked; "recorded" allows only the
 *                           Allow-Headers list seen on its GET answers (no Range/If-Range, so a
 *                           preflighted request fails); "fail" answers 403, as reported in
 *                           datasets #7931 ("does not have HTTP ok status").
 *   rawSpecialRefs: false   true accepts an unencoded refs/pr/N or refs/convert/NAME revision in
 *                           resolve URLs (public scripts use such URLs; whether the hub accepts
 *                           them was not confirmed, so by default only the encoded form works).
 *   cdnHost                 the name in the 302's Location (default cas-bridge.xethub.hf.co).
 *   urlTtlSeconds: 3600     lifetime of the signed CDN URLs; the CDN answers 403 after it.
 *
 * Returns { hubPort, cdnPort, hostRules, close(), requests, setFault(fn), cdnHost }.
 * setFault(fn): fn({ host, method, path, range, count, headers }) for every GET and HEAD (not
 *   OPTIONS) returns null, or { status, body?, headers? }, { cutAfter: N, cutDelayMs? } (headers with the full
 *   Content-Length, N body bytes, then the socket is destroyed), { stallAfter: N } (N bytes, then
 *   nothing until close()), or { delayMs } (then answers normally). `count` is 1 for the first
 *   request of that host and path (query left out) since the last setFault call.
 * requests: every request, { host: "hub"|"cdn", method, path, headers, status, fault? }; status is
 *   filled in when the answer starts (0 when none was given).
 */
export async function startHub({ repos, cert, log, ...options }) {
  const opts = {
    resolveCache: true,
    gzip: "length",
    gzipMinBytes: 0,
    cdnPreflight: "ok",
    cdnHost: CDN_HOSTS[0],
    urlTtlSeconds: 3600,
    ...options,
  };
  const say = typeof log === "function" ? log : log ? (l) => console.log(l) : () => {};
  const requests = [];
  const counts = new Map();
  let fault = null;
  const secret = randomBytes(32);
  const sockets = new Set();

  // ---- repository model ----

  function findRepo(owner, name) {
    return Object.hasOwn(repos, `${owner}/${name}`) ? repos[`${owner}/${name}`] : null;
  }

  /// A revision by name, by full commit, or by an unambiguous commit prefix of 7+ hex digits.
  function findRevision(repo, rev) {
    const revs = Object.entries(repo.revisions ?? {});
    const named = revs.find(([n]) => n === rev);
    if (named) return { commit: named[1].commit, files: { ...named[1].files } };
    if (/^[0-9a-f]{7,40}$/.test(rev)) {
      const hits = revs.filter(([, r]) => r.commit.startsWith(rev));
      const commits = new Set(hits.map(([, r]) => r.commit));
      if (commits.size === 1) {
        // The same commit may be listed under several names; their files are the same tree.
        return { commit: hits[0][1].commit, files: Object.assign({}, ...hits.map(([, r]) => r.files)) };
      }
    }
    return null;
  }

  function repoObjectId(repoId) {
    return createHash("sha1").update(repoId).digest("hex").slice(0, 24);
  }

  // ---- responses ----

  function hubCors(req) {
    return {
      "Access-Control-Allow-Origin": req.headers.origin ?? "https://huggingface.co",
      "Access-Control-Expose-Headers": HUB_EXPOSE,
      "Access-Control-Max-Age": "86400",
      Vary: "Origin",
    };
  }

  function hubBase(req) {
    return {
      "X-Powered-By": "huggingface-moon",
      "X-Request-Id": requestId(),
      "Cross-Origin-Opener-Policy": "same-origin",
      "Referrer-Policy": "strict-origin-when-cross-origin",
      ...hubCors(req),
    };
  }

  function cdnBase() {
    return {
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Allow-Headers": CDN_ALLOW_HEADERS,
      "Access-Control-Expose-Headers": CDN_EXPOSE,
      "x-request-id": randomBytes(13).toString("hex").toUpperCase(),
      "X-Cache": "Miss from cloudfront",
      Via: "1.1 0123456789abcdef0123456789abcdef.cloudfront.net (CloudFront)",
      "X-Amz-Cf-Pop": "LOCAL-P1",
      "X-Amz-Cf-Id": randomBytes(30).toString("base64url"),
      "Content-Security-Policy": "default-src 'none'; sandbox",
    };
  }

  /// Sends `body` (a Buffer) with `status`, applying a fault of kind cutAfter/stallAfter.
  function send(req, res, entry, status, headers, body, f) {
    res.writeHead(status, headers);
    entry.status = status;
    if (req.method === "HEAD" || !body || body.length === 0) return void res.end();
    if (f?.cutAfter !== undefined) {
      // As a dropped connection looks: the bytes flow and reach the reader, then the line goes
      // dead. (Destroyed at once, the bytes still in flight may be dropped with the socket.)
      entry.fault = { cutAfter: f.cutAfter };
      res.write(body.subarray(0, Math.min(f.cutAfter, body.length)), () => setTimeout(() => res.socket?.destroy(), f.cutDelayMs ?? 300));
      return;
    }
    if (f?.stallAfter !== undefined) {
      entry.fault = { stallAfter: f.stallAfter };
      res.write(body.subarray(0, Math.min(f.stallAfter, body.length)));
      return; // left open; close() destroys the socket
    }
    res.end(body);
  }

  /// A plain-text answer of the hub (errors, redirects), with its weak Express ETag.
  function hubText(req, res, entry, status, text, extra = {}) {
    const headers = { "Content-Type": "text/plain; charset=utf-8", "Content-Length": Buffer.byteLength(text), ETag: expressEtag(text), ...hubBase(req), ...extra };
    send(req, res, entry, status, headers, Buffer.from(text), null);
  }

  /// Serves a file's bytes: If-None-Match (304), Range/If-Range (206/416), gzip when allowed.
  function serveBytes(req, res, entry, file, { etag, headers, gzip }, f) {
    if (noneMatch(req.headers["if-none-match"], etag)) {
      res.writeHead(304, { ETag: etag, ...headers });
      entry.status = 304;
      return void res.end();
    }
    let range = parseRange(req.headers.range, file.size);
    if (range && req.headers["if-range"] !== undefined && !ifRangeMatches(req.headers["if-range"], etag)) range = null;
    if (range === "unsatisfiable") {
      return send(req, res, entry, 416, { ...headers, "Content-Range": `bytes */${file.size}`, "Content-Length": 0 }, null, f);
    }
    if (range) {
      const body = file.bytes.subarray(range.start, range.end + 1);
      return send(req, res, entry, 206, { ...headers, ETag: etag, "Accept-Ranges": "bytes", "Content-Range": `bytes ${range.start}-${range.end}/${file.size}`, "Content-Length": body.length }, body, f);
    }
    if (gzip && wantsGzip(req, file)) {
      const body = gzipped(file);
      const h = { ...headers, ETag: `W/${etag}`, "Accept-Ranges": "bytes", "Content-Encoding": "gzip", Vary: `${headers.Vary ?? "Origin"},accept-encoding` };
      if (opts.gzip === "length") h["Content-Length"] = body.length;
      return send(req, res, entry, 200, h, body, f);
    }
    send(req, res, entry, 200, { ...headers, ETag: etag, "Accept-Ranges": "bytes", "Content-Length": file.size }, file.bytes, f);
  }

  function wantsGzip(req, file) {
    return opts.gzip !== "off" && file.text && file.size >= opts.gzipMinBytes && /\bgzip\b/i.test(req.headers["accept-encoding"] ?? "");
  }

  function smallFileHeaders(req, file, commit) {
    return {
      ...hubBase(req),
      "Content-Type": file.text ? "text/plain; charset=utf-8" : "application/octet-stream",
      "Content-Disposition": contentDisposition(file.name),
      "Content-Security-Policy": "default-src 'none'; sandbox",
      "X-Repo-Commit": commit,
    };
  }

  // ---- the hub ----

  function hubRoute(req, res, entry, url, f) {
    const raw = url.pathname.split("/").slice(1);
    let segs;
    try {
      segs = raw.map(decodeURIComponent);
    } catch {
      return hubText(req, res, entry, 400, "Bad Request");
    }

    // /api/resolve-cache/models/{owner}/{name}/{commit}/{file...}: where small files are served.
    if (segs[0] === "api" && segs[1] === "resolve-cache" && segs[2] === "models" && segs.length >= 7) {
      const [owner, name, commit] = segs.slice(3, 6);
      const file = segs.slice(6).join("/");
      const repo = findRepo(owner, name);
      if (!repo || repo.private) return notFoundRepo(req, res, entry);
      if (repo.gated) return gated(req, res, entry, owner, name);
      // The cache takes only a full commit hash (a branch name there is a 400).
      if (!/^[0-9a-f]{40}$/.test(commit)) return hubText(req, res, entry, 400, "Invalid commit hash");
      const revision = findRevision(repo, commit);
      if (!revision) return revisionNotFound(req, res, entry, commit);
      return serveSmall(req, res, entry, revision, file, f);
    }

    // /{owner}/{name}/resolve/{revision}/{file...}: {revision} is ONE segment, so refs/pr/N
    // must arrive as refs%2Fpr%2FN (huggingface_hub quotes it with safe=""); a raw refs/pr/N
    // reads as revision "refs" (404 RevisionNotFound) unless `rawSpecialRefs` is set.
    if (segs.length >= 5 && segs[2] === "resolve") {
      const [owner, name] = segs;
      let rev = segs[3];
      let file = segs.slice(4).join("/");
      if (opts.rawSpecialRefs && rev === "refs" && segs.length >= 7 && ((segs[4] === "pr" && /^\d+$/.test(segs[5])) || segs[4] === "convert")) {
        rev = segs.slice(3, 6).join("/");
        file = segs.slice(6).join("/");
      }
      const repo = findRepo(owner, name);
      if (!repo || repo.private) return notFoundRepo(req, res, entry);
      if (repo.gated) return gated(req, res, entry, owner, name);
      const revision = findRevision(repo, rev);
      if (!revision) return revisionNotFound(req, res, entry, rev);
      const spec = Object.hasOwn(revision.files, file) ? revision.files[file] : null;
      if (!spec || file === "") return entryNotFound(req, res, entry, revision.commit);
      const data = loadFile(file, spec);
      if (data.lfs) return redirectLfs(req, res, entry, `${owner}/${name}`, revision.commit, data);
      if (!opts.resolveCache) return serveSmall(req, res, entry, revision, file, f);
      // 307 with a relative Location, same host; the etag query is the git blob id, quoted.
      const query = `${encodeURIComponent(url.pathname)}=&etag=${encodeURIComponent(`"${data.gitSha1}"`)}`;
      const location = `/api/resolve-cache/models/${owner}/${name}/${revision.commit}/${file.split("/").map(encodeURIComponent).join("/")}?${query}`;
      return hubText(req, res, entry, 307, `Temporary Redirect. Redirecting to ${location}`, {
        Location: location,
        "X-Repo-Commit": revision.commit,
        "X-Linked-Etag": `"${data.gitSha1}"`,
        "Accept-Ranges": "bytes",
        "Content-Disposition": contentDisposition(file),
      });
    }
    hubText(req, res, entry, 404, "Sorry, we can't find the page you are looking for.");
  }

  function serveSmall(req, res, entry, revision, file, f) {
    const spec = Object.hasOwn(revision.files, file) ? revision.files[file] : null;
    if (!spec) return entryNotFound(req, res, entry, revision.commit);
    const data = loadFile(file, spec);
    serveBytes(req, res, entry, data, { etag: `"${data.gitSha1}"`, headers: smallFileHeaders(req, data, revision.commit), gzip: true }, f);
  }

  function redirectLfs(req, res, entry, repoId, commit, data) {
    const now = new Date();
    const expires = Math.floor(now.getTime() / 1000) + opts.urlTtlSeconds;
    const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
    const path = `/xet-bridge-us/${repoObjectId(repoId)}/${data.xetHash}`;
    const signature = createHmac("sha256", secret).update(`${path}\n${expires}`).digest("hex");
    const disposition = `inline; filename*=UTF-8''${encodeURIComponent(basename(data.name))}; filename="${basename(data.name)}";`;
    const policy = Buffer.from(JSON.stringify({ Statement: [{ Resource: `https://${opts.cdnHost}${path}*`, Condition: { DateLessThan: { "AWS:EpochTime": expires } } }] })).toString("base64url");
    const query = new URLSearchParams({
      "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
      "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
      "X-Amz-Credential": `cas/${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`,
      "X-Amz-Date": amzDate,
      "X-Amz-Expires": String(opts.urlTtlSeconds),
      "X-Amz-Signature": signature,
      "X-Amz-SignedHeaders": "host",
      "X-Xet-Cas-Uid": "public",
      "response-content-disposition": disposition,
      "x-id": "GetObject",
      Expires: String(expires),
      Policy: policy,
      Signature: randomBytes(48).toString("base64url"),
      "Key-Pair-Id": "K2L8F4GPSG1IFC",
    });
    const location = `https://${opts.cdnHost}${path}?${query}`;
    hubText(req, res, entry, 302, `Found. Redirecting to ${location}`, {
      Location: location,
      "X-Repo-Commit": commit,
      "X-Linked-Size": String(data.size),
      "X-Linked-Etag": `"${data.sha256}"`,
      "X-Xet-Hash": data.xetHash,
      Link: `<https://huggingface.co/api/models/${repoId}/xet-read-token/${commit}>; rel="xet-auth", <https://cas-server.xethub.hf.co/v1/reconstructions/${data.xetHash}>; rel="xet-reconstruction-info"`,
      "Accept-Ranges": "bytes",
      "Content-Disposition": contentDisposition(data.name),
    });
  }

  const authenticated = (req) => !!req.headers.authorization;

  function notFoundRepo(req, res, entry) {
    // Anonymous: 401 for missing and private repos alike, and no X-Error-Code.
    if (!authenticated(req)) {
      return hubText(req, res, entry, 401, "Invalid username or password.", {
        "X-Error-Message": "Invalid username or password.",
        "WWW-Authenticate": 'Bearer realm="Authentication required", charset="UTF-8"',
      });
    }
    hubText(req, res, entry, 404, "Repository not found", { "X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found" });
  }

  function gated(req, res, entry, owner, name) {
    const message = authenticated(req)
      ? `Access to model ${owner}/${name} is restricted and you are not in the authorized list. Visit https://huggingface.co/${owner}/${name} to ask for access.`
      : `Access to model ${owner}/${name} is restricted. You must have access to it and be authenticated to access it. Please log in.`;
    const extra = { "X-Error-Code": "GatedRepo", "X-Error-Message": message };
    if (!authenticated(req)) extra["WWW-Authenticate"] = 'Bearer realm="Authentication required", charset="UTF-8"';
    hubText(req, res, entry, authenticated(req) ? 403 : 401, message, extra);
  }

  function revisionNotFound(req, res, entry, rev) {
    const message = `Invalid rev id: ${rev}`;
    hubText(req, res, entry, 404, message, { "X-Error-Code": "RevisionNotFound", "X-Error-Message": message });
  }

  function entryNotFound(req, res, entry, commit) {
    hubText(req, res, entry, 404, "Entry not found", { "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found", "X-Repo-Commit": commit });
  }

  // ---- the CDN ----

  function cdnRoute(req, res, entry, url, f) {
    const m = /^\/xet-bridge-us\/([0-9a-f]{24})\/([0-9a-f]{64})$/.exec(url.pathname);
    const data = m && byXetHash.get(m[2]);
    const expires = Number(url.searchParams.get("Expires"));
    const good = m && createHmac("sha256", secret).update(`${url.pathname}\n${expires}`).digest("hex") === url.searchParams.get("X-Amz-Signature");
    if (!data || !good || expires * 1000 < Date.now()) {
      const body = Buffer.from('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access denied</Message></Error>');
      return send(req, res, entry, 403, { ...cdnBase(), "Content-Type": "application/xml", "Content-Length": body.length }, body, null);
    }
    const headers = {
      ...cdnBase(),
      "Content-Type": url.searchParams.get("response-content-type") ?? "application/octet-stream",
      "Content-Disposition": url.searchParams.get("response-content-disposition") ?? contentDisposition(data.name ?? "file"),
      "Cache-Control": "public, max-age=31536000",
    };
    // The CDN's ETag is the Xet hash, strong. Binaries are never compressed here.
    serveBytes(req, res, entry, { ...data, text: false }, { etag: `"${data.xetHash}"`, headers, gzip: false }, f);
  }

  // ---- dispatch ----

  function handler(host) {
    return async (req, res) => {
      const url = new URL(req.url, `https://${host === "hub" ? "huggingface.co" : opts.cdnHost}`);
      const entry = { host, method: req.method, path: req.url, headers: { ...req.headers }, status: 0 };
      requests.push(entry);
      res.on("close", () => say(`${host} ${req.method} ${req.url} -> ${entry.status || "no answer"}${entry.fault ? ` ${JSON.stringify(entry.fault)}` : ""}`));
      try {
        if (req.method === "OPTIONS") return preflight(host, req, res, entry);
        if (req.method !== "GET" && req.method !== "HEAD") {
          const headers = host === "hub" ? hubBase(req) : cdnBase();
          return send(req, res, entry, 405, { ...headers, Allow: "GET, HEAD, OPTIONS", "Content-Length": 0 }, null, null);
        }
        const key = `${host} ${url.pathname}`;
        const count = (counts.get(key) ?? 0) + 1;
        counts.set(key, count);
        const f = fault?.({ host, method: req.method, path: url.pathname, range: req.headers.range ?? null, count, headers: req.headers }) ?? null;
        if (f?.delayMs) await new Promise((ok) => setTimeout(ok, f.delayMs));
        if (f?.status) {
          entry.fault = { status: f.status };
          const body = Buffer.from(f.body ?? `Fault ${f.status}`);
          const base = host === "hub" ? hubBase(req) : cdnBase();
          return send(req, res, entry, f.status, { ...base, "Content-Type": "text/plain; charset=utf-8", "Content-Length": body.length, ...f.headers }, body, null);
        }
        if (host === "hub") hubRoute(req, res, entry, url, f);
        else cdnRoute(req, res, entry, url, f);
      } catch (e) {
        say(`${host} ${req.method} ${req.url}: ${e.stack}`);
        if (!res.headersSent) {
          entry.status = 500;
          res.writeHead(500, { "Content-Type": "text/plain" });
        }
        res.end();
      }
    };
  }

  /// CORS preflights. The hub reflects what is asked (hub-docs #1889); the CDN answers like S3.
  function preflight(host, req, res, entry) {
    const method = req.headers["access-control-request-method"] ?? "GET";
    const asked = req.headers["access-control-request-headers"];
    if (host === "cdn" && opts.cdnPreflight === "fail") {
      return send(req, res, entry, 403, { "Content-Type": "application/xml", "Content-Length": 0 }, null, null);
    }
    const headers = host === "hub"
      ? { ...hubBase(req), "Access-Control-Allow-Methods": method, "Access-Control-Allow-Headers": asked ?? DEFAULT_ALLOW_HEADERS, "Content-Length": 0 }
      : {
          "Access-Control-Allow-Origin": "*",
          "Access-Control-Allow-Methods": "GET, HEAD",
          // "recorded": only the list the CDN sends on its GET/HEAD answers, which lacks If-Range.
          "Access-Control-Allow-Headers": opts.cdnPreflight === "recorded" ? CDN_ALLOW_HEADERS : asked ?? DEFAULT_ALLOW_HEADERS,
          "Access-Control-Max-Age": "3000",
          "Content-Length": 0,
        };
    send(req, res, entry, host === "hub" ? 204 : 200, headers, null, null);
  }

  function listen(host) {
    const server = createServer({ key: cert.key, cert: cert.cert }, handler(host));
    server.on("connection", (s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    // A socket destroyed on purpose (a fault) must not surface as an error.
    server.on("tlsClientError", () => {});
    return new Promise((ok, fail) => {
      server.once("error", fail);
      server.listen(0, "127.0.0.1", () => ok(server));
    });
  }

  const hubServer = await listen("hub");
  const cdnServer = await listen("cdn");
  const hubPort = hubServer.address().port;
  const cdnPort = cdnServer.address().port;
  const hostRules = [
    ...HUB_HOSTS.map((h) => `MAP ${h} 127.0.0.1:${hubPort}`),
    ...CDN_HOSTS.map((h) => `MAP ${h} 127.0.0.1:${cdnPort}`),
  ].join(", ");

  return {
    hubPort,
    cdnPort,
    hostRules,
    cdnHost: opts.cdnHost,
    requests,
    setFault(fn) {
      fault = fn;
      counts.clear();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([hubServer, cdnServer].map((s) => new Promise((ok) => s.close(() => ok()))));
    },
  };
}
