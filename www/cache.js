// The offline store for model files: the Cache API, keyed by each file's URL. Used by the
// worker (to read and fill it) and by the page (to show its size and clear it) without
// starting an engine.
//
// Files of a hub repository are stored under their commit's URL (…/resolve/<commit>/file),
// whatever revision was asked for, so a moving branch never mixes files of two commits; the
// branch's last known commit is kept beside them (see revisionKey) for offline visits.

import { isCommit, resolveBase, resolveModel } from "./hub.js";

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

/// The cache key holding the commit a mutable revision (a branch) last resolved to.
export function revisionKey(base) {
  return `${base}.webclip-commit`;
}

/// The base URL a model's cached files are stored under: for a hub branch, its last known
/// commit's (null if it was never fetched); otherwise the model's own base.
export async function cachedBase(source, cache) {
  if (!source.repo || isCommit(source.revision)) return source.base;
  const hit = await cache?.match(revisionKey(source.base));
  const commit = hit && (await hit.text());
  return commit && isCommit(commit) ? resolveBase(source.repo, commit, new URL(source.base).origin) : null;
}

/// {available, bytes, files, quota, usage, persisted}: what the offline store holds, and what
/// the browser says of its storage (quota and usage cover the whole origin).
export async function cacheInfo() {
  const cache = await openCache();
  const storage = await storageInfo();
  if (!cache) return { available: false, bytes: 0, files: 0, ...storage };
  let bytes = 0;
  let files = 0;
  for (const request of await cache.keys()) {
    if (request.url.endsWith(".webclip-commit")) continue;
    const response = await cache.match(request);
    if (!response?.ok) continue;
    files++;
    bytes += Number(response.headers.get("content-length")) || 0;
  }
  return { available: true, bytes, files, ...storage };
}

async function storageInfo() {
  const s = globalThis.navigator?.storage;
  const estimate = await s?.estimate?.().catch(() => null);
  const persisted = await s?.persisted?.().catch(() => null);
  return { quota: estimate?.quota ?? null, usage: estimate?.usage ?? null, persisted: persisted ?? null };
}

/// Ask the browser to keep the stored model when it runs short of space (it may say no, or
/// ask the visitor). Returns whether storage is persistent.
export async function requestPersistence() {
  const s = globalThis.navigator?.storage;
  if (!s?.persist) return false;
  try {
    return (await s.persisted()) || (await s.persist());
  } catch {
    return false;
  }
}

export async function clearCache() {
  if (globalThis.caches) await caches.delete(CACHE_NAME);
  return cacheInfo();
}

/// Whether a model's weights are stored (so loading it needs no download). `model`: what
/// loadModel takes (repo id, hub URL or base URL).
export async function isCached(model) {
  const cache = await openCache();
  if (!cache) return false;
  const base = await cachedBase(resolveModel(model), cache);
  if (!base) return false;
  for (const file of ["model.safetensors", "pytorch_model.bin", "model.q8.safetensors"]) {
    if ((await cache.match(new URL(file, base).href))?.ok) return true;
  }
  return false;
}
