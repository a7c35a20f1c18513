#!/usr/bin/env bash
# Set up the toolchain, build the browser app, and serve it on http://127.0.0.1:8080.
#   scripts/serve.sh             the page, loading openai/clip-vit-base-patch32 from the hub
#   scripts/serve.sh MODEL_DIR   also serve a local Hugging Face CLIP directory at
#                                /models/local/ and open the page on it (no internet needed)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
scripts/setup-web.sh
trunk build --release
# Cross-origin isolated from the first load, so the CPU engine takes every core (the page's
# service worker does the same from the second load on hosts that cannot set headers).
args=(--port "${PORT:-8080}" --isolate)
url="http://127.0.0.1:${PORT:-8080}/"
if [ $# -ge 1 ]; then
  [ -f "$1/config.json" ] && { [ -f "$1/model.safetensors" ] || [ -f "$1/pytorch_model.bin" ]; } ||
    { echo "serve.sh: $1 has no config.json + model.safetensors (or pytorch_model.bin)" >&2; exit 1; }
  args+=(--model "local=$1")
  url="${url}?model=/models/local/"
fi
echo
echo "webclip: open $url"
exec node scripts/serve.mjs "${args[@]}"
