// Where a model's files are: a Hugging Face repository at a revision, or any base URL.
//
// The hub serves a repository's files at https://huggingface.co/OWNER/NAME/resolve/REV/FILE,
// where REV is ONE path segment: a branch, tag or commit, URL-encoded ("refs/pr/15" is sent
// as "refs%2Fpr%2F15"). A branch such as "main" moves; a 40-hex commit never does, so files
// fetched at a commit can be cached for good.

export const HUB = "https://huggingface.co";

/// openai/clip-vit-base-patch32 keeps only pytorch_model.bin (and TF / Flax files) on `main`;
/// its safetensors conversion is the pull request refs/pr/15, at this commit. Pinned, so the
/// cached files never go stale.
export const DEFAULT_REPO = "openai/clip-vit-base-patch32";
export const DEFAULT_COMMIT = "b33cedfd0df4e43b8238760678fcc89e1a0d38b3";
export const DEFAULT_MODEL = `${DEFAULT_REPO}@${DEFAULT_COMMIT}`;

const REPO = /^([A-Za-z0-9][\w.-]*)\/([\w.-]+)$/;

export function isCommit(revision) {
  return /^[0-9a-f]{40}$/.test(revision);
}

/// The base URL (ending in "/") of a repository's files at a revision.
export function resolveBase(repo, revision, hub = HUB) {
  return `${hub}/${repo}/resolve/${encodeURIComponent(revision)}/`;
}

/// Parse what a visitor may type or paste: "owner/name", "owner/name@revision", a hub page
/// (https://huggingface.co/owner/name, …/tree/REV, …/blob/REV/file, …/resolve/REV/file,
/// …/commit/SHA, …/discussions/N for a pull request), or any other URL (absolute, or relative
/// to `base`) under which config.json and the weights are found.
/// Returns {repo, revision, base} for the hub ({repo: null} for other URLs).
export function resolveModel(model, base = globalThis.location?.href) {
  const m = String(model || DEFAULT_MODEL).trim();
  const at = m.indexOf("@");
  if (!/^[a-z]+:/i.test(m) && !m.startsWith(".") && !m.startsWith("/")) {
    const [repo, revision] = at > 0 ? [m.slice(0, at), m.slice(at + 1)] : [m, "main"];
    if (REPO.test(repo) && revision) return { repo, revision, base: resolveBase(repo, revision) };
  }
  const url = new URL(m, base);
  if (/^(www\.)?(huggingface\.co|hf\.co)$/.test(url.hostname) && url.protocol === "https:") {
    const parts = url.pathname.split("/").filter(Boolean);
    const [owner, name, kind, rev] = parts[0] === "models" ? parts.slice(1) : parts;
    if (owner && name && REPO.test(`${owner}/${name}`)) {
      const repo = `${owner}/${name}`;
      let revision = "main";
      if (["tree", "blob", "resolve", "commit"].includes(kind) && rev) revision = decodeURIComponent(rev);
      else if (kind === "discussions" && /^\d+$/.test(rev || "")) revision = `refs/pr/${rev}`;
      return { repo, revision, base: resolveBase(repo, revision) };
    }
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return { repo: null, revision: null, base: url.href };
}

/// The base URL of a model's files (see resolveModel).
export function modelBaseUrl(model, base) {
  return resolveModel(model, base).base;
}
