#!/usr/bin/env bash
# Build webclip and classify the committed sample photos with the tiny fixture model.
# Usage: scripts/demo.sh [MODEL_DIR] [LABEL...]   (any Hugging Face CLIP directory works)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-tests/fixtures/tiny-quickgelu}
shift || true
labels=("$@")
[ ${#labels[@]} -gt 0 ] || labels=(cat "cup of coffee" rocket astronaut dog)
args=()
for l in "${labels[@]}"; do args+=(--label "$l"); done
cargo build --locked --release --bin webclip
./target/release/webclip classify --model "$model" "${args[@]}" --top-k 3 \
  tests/fixtures/images/chelsea.png tests/fixtures/images/coffee.png \
  tests/fixtures/images/rocket.jpg tests/fixtures/images/astronaut.png
