// The service worker that makes the page open offline. The build (scripts/build-sw.mjs, a
// trunk hook) writes it to the site's root as sw.js, after a line that defines BUILD: the
// build's version (a hash of every file) and its file list.
//
// - install: fetch every file of this build into a cache named after the version (of the
//   two engine modules, the one this browser runs);
// - activate: delete the caches of older builds (the model files live in their own cache,
//   webclip-models-v1, which is never touched here);
// - fetch: the page's own files come from this build's cache, whatever cache headers the
//   host sends, so a visit with the network off gets exactly the build it had; anything else
//   (the model hub, other origins) goes to the network untouched. The page's own responses
//   get the two headers that make it cross-origin isolated (COOP same-origin, COEP
//   credentialless: other origins' files still load, without credentials), which the
//   threaded engine's shared memory needs: so even a host that cannot set headers (GitHub
//   Pages) gets every core, from the load after the one that installed this worker.
// A new deployment changes BUILD, so the browser installs the new worker beside the old one;
// it takes over when every tab of the old one is closed, or when the page asks it to (the
// visitor accepted "Reload to update").

/* global BUILD */
const SHELL = `webclip-shell-${BUILD.version}`;
const scope = new URL(self.registration.scope);
const urls = BUILD.files.map((f) => new URL(f, scope).href);
const index = new URL("index.html", scope).href;
// Of the engine's two single-threaded modules, only the one this browser loads (the worker
// decides the same way, in www/features.js, whose probe the build copies into BUILD): the
// other is not fetched. The threaded module (threads/) is built with relaxed SIMD too, so it
// is fetched where the relaxed one is, and not elsewhere.
const relaxed = (() => {
  try {
    return WebAssembly.validate(Uint8Array.from(atob(BUILD.relaxedSimdProbe), (c) => c.charCodeAt(0)));
  } catch {
    return false;
  }
})();
const unused = new URL(relaxed ? "webclip_bg.wasm" : "webclip_relaxed_bg.wasm", scope).href;
const threads = new URL("threads/", scope).href;
const precache = BUILD.files.includes("webclip_relaxed_bg.wasm") ? urls.filter((u) => u !== unused && (relaxed || !u.startsWith(threads))) : urls;

/// `response` with the headers that make the page cross-origin isolated.
function isolated(response) {
  if (!response || response.type === "opaque" || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "credentialless");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL);
      // cache: "reload" skips the HTTP cache, so no stale file of a previous build slips in.
      await cache.addAll(precache.map((u) => new Request(u, { cache: "reload" })));
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("webclip-shell-") && name !== SHELL) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "skip-waiting") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== scope.origin) return;
  // The page itself, with any query string (?model=…), is index.html.
  const key = request.mode === "navigate" && url.pathname === scope.pathname ? index : url.origin + url.pathname;
  if (!urls.includes(key)) return;
  event.respondWith(
    (async () => {
      const hit = await caches.match(key, { cacheName: SHELL });
      return isolated(hit || (await fetch(request)));
    })(),
  );
});
