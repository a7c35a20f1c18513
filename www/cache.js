// The offline store for model files: the Cache API, keyed by each file's URL. Used by the
// worker (to read and fill it) and by the page (to show its size and clear it) without
// starting an engine.

export const CACHE_NAME = "webclip-models-v1";

/// The cache, or null where the browser offers none (private mode, sandboxed frames).
export async function openCache() {
  if (!globalThis.caches) return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/// {available, bytes, files}: what the offline store holds.
export async function cacheInfo() {
  const cache = await openCache();
  if (!cache) return { available: false, bytes: 0, files: 0 };
  let bytes = 0;
  const keys = await cache.keys();
  for (const request of keys) {
    const response = await cache.match(request);
    bytes += Number(response?.headers.get("content-length")) || 0;
  }
  return { available: true, bytes, files: keys.length };
}

export async function clearCache() {
  if (globalThis.caches) await caches.delete(CACHE_NAME);
  return cacheInfo();
}

/// Whether a model's weights are stored (so loading it needs no network).
export async function isCached(baseUrl) {
  const cache = await openCache();
  const hit = cache && (await cache.match(new URL("model.safetensors", baseUrl).href));
  return !!hit?.ok;
}
