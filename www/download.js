// Downloads that survive the real network, for the engine's worker.
//
// - Large files on the hub answer 302 to a CDN on another origin; the browser follows it.
// - A connection that drops mid-file is resumed with `Range` from the byte it stopped at, and
//   retried a few times with growing pauses before giving up in plain words. The resumed part
//   must carry the ETag the first part came with, or the file changed and starts over: the
//   If-Range check, made here because an `If-Range` header is not CORS-safelisted (it forces
//   a preflight, which the hub's CDN does not allow: it lists only Content-Range,
//   Content-Type, Content-Disposition and ETag), while a plain `Range: bytes=N-` is sent
//   without one. The resumption goes straight to the CDN address the redirect led to.
// - `Content-Length` is a hint: hosts that gzip a small file (GitHub Pages, many CDNs) count
//   its compressed bytes, so more bytes than announced is normal; fewer is a cut.
// - The hub says why a request failed in `X-Error-Code` (RepoNotFound, GatedRepo,
//   RevisionNotFound, EntryNotFound).

const RETRIES = 4;
const BACKOFF_MS = [500, 1500, 4000, 8000];

/// A download that failed for good; `retryable` when trying again later may help.
export class DownloadError extends Error {
  constructor(message, { retryable = false, absent = false } = {}) {
    super(message);
    this.retryable = retryable;
    this.absent = absent;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A fetch the page's Content-Security-Policy blocks fails as a network error would; the
// violation event says what it was, so the message can name the fix instead of retrying.
// (A blob: worker started by a page on another origin inherits that page's policy.)
let violation = null;
globalThis.addEventListener?.("securitypolicyviolation", (e) => {
  if (/^(connect-src|default-src)/.test(e.effectiveDirective)) violation = { url: e.blockedURI, directive: e.effectiveDirective, at: performance.now() };
});
function cspError(since) {
  if (!violation || violation.at < since) return null;
  return new DownloadError(
    `This page's Content-Security-Policy blocks the download from ${host(violation.url) || "the model's host"} (${violation.directive}). Its connect-src must allow the model's host, and for the Hugging Face hub also the hosts it redirects to: https://huggingface.co https://*.hf.co https://*.huggingface.co.`,
  );
}
const offline = () => globalThis.navigator?.onLine === false;

function host(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/// The error for a fetch that threw (no response at all): blocked by the page's CSP, offline,
/// or the host unreachable / not allowing cross-origin requests.
export async function fetchFailure(url, file, since) {
  await sleep(0);
  return (
    cspError(since) ||
    (offline()
      ? new DownloadError(`You are offline, and ${file} is not in the offline cache yet. Connect to the internet (once) and try again.`, { retryable: true })
      : new DownloadError(`${host(url)} could not be reached for ${file}: the server is down, or it does not allow downloads from other sites (CORS). Try again later, or load local files.`, { retryable: true }))
  );
}

/// A reader that fills buffers it is given, or null where `stream` is not a byte stream.
export function byobReader(stream) {
  try {
    return stream.getReader({ mode: "byob" });
  } catch {
    return null;
  }
}

export function fmtBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KB", "MB", "GB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
  return `${(n / 1024 ** i).toFixed(i ? 1 : 0)} ${u[i]}`;
}

/// Why a response is not the file, in words, from its status and the hub's X-Error-Code.
/// `what`: {file, repo, revision} for the message.
export function responseError(response, { file, repo, revision, url }) {
  const code = response.headers.get("x-error-code");
  const status = response.status;
  if (code === "RepoNotFound" || (repo && status === 401 && !code)) {
    return new DownloadError(
      `The repository ${repo || host(url)} was not found on the Hugging Face hub. Check the name (owner/name, as in the address of its page); a private repository cannot be loaded here.`,
    );
  }
  if (code === "GatedRepo") {
    return new DownloadError(
      `${repo} is a gated repository: its owner asks people to sign in on huggingface.co and accept its conditions before downloading. webclip downloads without an account, so download the files on its page and load them here as local files.`,
    );
  }
  if (code === "RevisionNotFound") {
    return new DownloadError(`${repo} has no revision "${revision}" (no such branch, tag or commit).`);
  }
  if (status === 404 || code === "EntryNotFound") {
    const where = repo ? `${repo} at ${revision}` : host(url);
    return new DownloadError(`${file} is not in ${where} (404).`, { absent: true });
  }
  if (status === 401 || status === 403) {
    return new DownloadError(`${host(url)} refused to send ${file} (${status}): it needs a sign-in or is private.`);
  }
  if (status === 429 || status >= 500) {
    return new DownloadError(`${host(url)} is busy or failing (${status} ${response.statusText}) while sending ${file}.`, { retryable: true });
  }
  return new DownloadError(`${host(url)} answered ${status} ${response.statusText} for ${file}.`);
}

/// Fetch `url` into one Uint8Array. `onProgress({loaded, total, rate, attempt})`.
/// `resumable`: the file may be resumed with Range after a cut (binary files, which no host
/// compresses; a gzip body's ranges are of its compressed bytes, so text restarts instead).
/// `firstResponse`: a response already obtained for `url` (its body unread).
/// `sink`: instead of gathering the file, hand it over as it arrives: `sink.start({total,
/// etag})` when the file starts (again, if it must restart from its first byte), then
/// `await sink.write(chunk)` for each piece in order; an error the sink throws ends the
/// download (it is not a network error to retry).
/// `reuse`: the sink is done with each piece when `write` returns (it copies it), so the
/// pieces can be read into one reused buffer rather than each into a new one left to the
/// garbage collector.
/// Returns {bytes (null with a sink), length, response} (the headers of the first successful
/// response).
export async function fetchBytes(url, { what, resumable = false, onProgress = () => {}, firstResponse = null, sink = null, reuse = false }) {
  let buffer = null; // preallocated when the length is known
  let chunks = []; // otherwise
  let received = 0;
  let total = 0;
  let etag = null;
  let resumeUrl = url; // after a redirect, resume straight from the CDN's address
  let head = null; // the first good response: the host answered
  let reused = new ArrayBuffer(reuse ? 1 << 20 : 0);
  let lastError = null;
  const start = performance.now();

  const keep = async (value) => {
    if (sink) {
      received += value.length;
      return sink.write(value);
    }
    if (buffer && received + value.length <= buffer.length) buffer.set(value, received);
    else {
      if (buffer) {
        chunks = [buffer.subarray(0, received)];
        buffer = null;
      }
      chunks.push(value);
    }
    received += value.length;
  };
  const restart = () => {
    buffer = null;
    chunks = [];
    received = 0;
  };

  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    if (attempt > 0) {
      if (offline()) throw new DownloadError(`You are offline: the download of ${what.file} stopped at ${fmtBytes(received)}${total ? ` of ${fmtBytes(total)}` : ""}. Connect and press Retry.`, { retryable: true });
      await sleep(BACKOFF_MS[attempt - 1]);
    }
    let response = attempt === 0 ? firstResponse : null;
    const resuming = received > 0 && resumable;
    if (received > 0 && !resumable) restart();
    try {
      if (!response) {
        const headers = {};
        if (resuming) headers.Range = `bytes=${received}-`;
        response = await fetch(resuming ? resumeUrl : url, { mode: "cors", credentials: "omit", headers });
        if (resuming && !response.ok && resumeUrl !== url) {
          // A signed CDN address may have expired: ask the origin again.
          response = await fetch(url, { mode: "cors", credentials: "omit", headers });
        }
      }
    } catch (e) {
      lastError = e;
      await sleep(0); // the violation event, if any, comes in its own task
      const blocked = cspError(start);
      if (blocked) throw blocked;
      if (offline()) throw new DownloadError(`You are offline, and ${what.file} is not in the offline cache yet. Connect to the internet (once) and try again.`, { retryable: true });
      continue;
    }
    if (!response.ok) {
      const error = responseError(response, { ...what, url });
      if (!error.retryable) throw error;
      lastError = error;
      continue;
    }
    head ||= response;
    const length = Number(response.headers.get("content-length")) || 0;
    const tag = response.headers.get("etag");
    if (resuming && response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") || "");
      if ((range && Number(range[1]) !== received) || (etag && tag && tag !== etag)) {
        // Not the rest of the same file: start again from its first byte.
        response.body?.cancel().catch(() => {});
        restart();
        total = 0;
        lastError = new Error("the file changed on the server while it was downloading");
        continue;
      }
      if (range && range[3] !== "*") total = Number(range[3]);
      else total = received + length;
    } else {
      // A whole file: the first answer, a server that ignores Range, or a file that changed
      // since (If-Range did not match).
      restart();
      total = length;
      if (sink) await sink.start({ total: response.headers.get("content-encoding") ? 0 : total, etag: tag || "" });
      else if (total > 0) buffer = new Uint8Array(total);
    }
    if (tag && !tag.startsWith("W/")) etag = tag;
    if (response.redirected && response.url) resumeUrl = response.url;

    const byob = sink && reuse && byobReader(response.body);
    const reader = byob || response.body.getReader();
    let lastReport = 0;
    let cut = false;
    for (;;) {
      let step;
      try {
        step = byob ? await reader.read(new Uint8Array(reused)) : await reader.read();
      } catch (e) {
        if (byob) reused = new ArrayBuffer(1 << 20); // the cut read kept the one lent to it
        lastError = e;
        cut = true;
        break;
      }
      if (step.done) break;
      if (byob) reused = step.value.buffer; // the same memory, handed back
      try {
        await keep(step.value);
      } catch (e) {
        reader.cancel().catch(() => {});
        throw e;
      }
      const now = performance.now();
      if (now - lastReport > 100) {
        lastReport = now;
        onProgress({ loaded: received, total: Math.max(total, received), rate: (received / (now - start)) * 1000, attempt });
      }
    }
    if (cut) {
      onProgress({ loaded: received, total: Math.max(total, received), attempt, interrupted: true });
      continue; // the connection dropped: resume (or restart) after a pause
    }
    if (total && received < total) {
      lastError = new Error(`${fmtBytes(received)} of ${fmtBytes(total)} arrived`);
      onProgress({ loaded: received, total, attempt, interrupted: true });
      continue;
    }
    const seconds = (performance.now() - start) / 1000;
    onProgress({ loaded: received, total: received, rate: seconds > 0 ? received / seconds : 0, done: true, attempt });
    return { bytes: sink ? null : assemble(), length: received, response: head };
  }
  if (!head && lastError instanceof TypeError) throw await fetchFailure(url, what.file, start);
  const detail = lastError?.message ? ` (${lastError.message})` : "";
  throw new DownloadError(
    `The download of ${what.file} from ${host(url)} kept breaking off: ${RETRIES + 1} tries, the last one stopped at ${fmtBytes(received)}${total ? ` of ${fmtBytes(total)}` : ""}${detail}. The connection may be unstable; press Retry to try again.`,
    { retryable: true },
  );

  function assemble() {
    if (buffer) return received === buffer.length ? buffer : buffer.subarray(0, received);
    const out = new Uint8Array(received);
    let offset = 0;
    for (const c of chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}
