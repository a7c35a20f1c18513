// What a visitor may type or paste as the model, and the URL its files are fetched from
// (www/hub.js, in Node: no browser needed).

import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_MODEL, resolveModel } from "../../www/hub.js";

const PAGE = "https://you.github.io/webclip/";
const B32 = "https://huggingface.co/openai/clip-vit-base-patch32/resolve";

test("repo ids, revisions and hub addresses resolve to one URL-encoded revision segment", () => {
  const cases = [
    ["", { repo: "openai/clip-vit-base-patch32", revision: "b33cedfd0df4e43b8238760678fcc89e1a0d38b3", base: `${B32}/b33cedfd0df4e43b8238760678fcc89e1a0d38b3/` }],
    [DEFAULT_MODEL, { repo: "openai/clip-vit-base-patch32", revision: "b33cedfd0df4e43b8238760678fcc89e1a0d38b3", base: `${B32}/b33cedfd0df4e43b8238760678fcc89e1a0d38b3/` }],
    ["openai/clip-vit-base-patch32", { repo: "openai/clip-vit-base-patch32", revision: "main", base: `${B32}/main/` }],
    [" openai/clip-vit-base-patch32@refs/pr/15 ", { repo: "openai/clip-vit-base-patch32", revision: "refs/pr/15", base: `${B32}/refs%2Fpr%2F15/` }],
    ["openai/clip-vit-base-patch32@v1.0", { repo: "openai/clip-vit-base-patch32", revision: "v1.0", base: `${B32}/v1.0/` }],
    ["https://huggingface.co/openai/clip-vit-base-patch32", { repo: "openai/clip-vit-base-patch32", revision: "main", base: `${B32}/main/` }],
    ["https://huggingface.co/openai/clip-vit-base-patch32/tree/refs%2Fpr%2F15", { repo: "openai/clip-vit-base-patch32", revision: "refs/pr/15", base: `${B32}/refs%2Fpr%2F15/` }],
    ["https://huggingface.co/openai/clip-vit-base-patch32/blob/main/config.json", { repo: "openai/clip-vit-base-patch32", revision: "main", base: `${B32}/main/` }],
    ["https://huggingface.co/openai/clip-vit-base-patch32/resolve/b33cedfd0df4e43b8238760678fcc89e1a0d38b3/model.safetensors", { repo: "openai/clip-vit-base-patch32", revision: "b33cedfd0df4e43b8238760678fcc89e1a0d38b3", base: `${B32}/b33cedfd0df4e43b8238760678fcc89e1a0d38b3/` }],
    ["https://huggingface.co/openai/clip-vit-base-patch32/discussions/15", { repo: "openai/clip-vit-base-patch32", revision: "refs/pr/15", base: `${B32}/refs%2Fpr%2F15/` }],
    ["https://hf.co/openai/clip-vit-base-patch32/commit/b33cedfd0df4e43b8238760678fcc89e1a0d38b3", { repo: "openai/clip-vit-base-patch32", revision: "b33cedfd0df4e43b8238760678fcc89e1a0d38b3", base: `${B32}/b33cedfd0df4e43b8238760678fcc89e1a0d38b3/` }],
    ["https://huggingface.co/models/openai/clip-vit-base-patch32", { repo: "openai/clip-vit-base-patch32", revision: "main", base: `${B32}/main/` }],
  ];
  for (const [input, want] of cases) assert.deepEqual(resolveModel(input, PAGE), want, JSON.stringify(input));
});

test("other addresses are base URLs, relative to the page", () => {
  // "owner/name" is a repo id; with a trailing slash (as the README's hosting steps write it),
  // a folder beside the page.
  assert.equal(resolveModel("models/clip-b32", PAGE).base, "https://huggingface.co/models/clip-b32/resolve/main/");
  assert.deepEqual(resolveModel("models/clip-b32/", PAGE), { repo: null, revision: null, base: `${PAGE}models/clip-b32/` });
  assert.deepEqual(resolveModel("./models/clip-b32", PAGE), { repo: null, revision: null, base: `${PAGE}models/clip-b32/` });
  assert.deepEqual(resolveModel("/models/tiny/", PAGE), { repo: null, revision: null, base: "https://you.github.io/models/tiny/" });
  assert.deepEqual(resolveModel("https://cdn.example/clip/b32", PAGE), { repo: null, revision: null, base: "https://cdn.example/clip/b32/" });
});
