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
//   (the model hub, other origins) goes to the network untouched.
// A new deployment changes BUILD, so the browser installs the new worker beside the old one;
// it takes over when every tab of the old one is closed, or when the page asks it to (the
// visitor accepted "Reload to update").

/* global BUILD */
const SHELL = `webclip-shell-${BUILD.version}`;
const scope = new URL(self.registration.scope);
const urls = BUILD.files.map((f) => new URL(f, scope).href);
const index = new URL("index.html", scope).href;
// Of the engine's two modules, only the one this browser loads (the worker decides the same
// way, in www/features.js, whose probe the build copies into BUILD): the other is not fetched.
const relaxed = (() => {
  try {
    return WebAssembly.validate(Uint8Array.from(atob(BUILD.relaxedSimdProbe), (c) => c.charCodeAt(0)));
  } catch {
    return false;
  }
})();
const unused = new URL(relaxed ? "webclip_bg.wasm" : "webclip_relaxed_bg.wasm", scope).href;
const precache = BUILD.files.includes("webclip_relaxed_bg.wasm") ? urls.filter((u) => u !== unused) : urls;

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
      return hit || fetch(request);
    })(),
  );
});
