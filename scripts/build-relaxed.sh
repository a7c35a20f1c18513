#!/usr/bin/env bash
# trunk post-build hook (release builds only): the engine's second module, with relaxed SIMD
# (`--cfg webclip_relaxed_simd`: the CPU's matrix-product kernel, src/kernels/simd128.rs, then
# fuses multiply and add), beside trunk's baseline one as webclip_relaxed_bg.wasm. The worker
# loads it where the browser's WebAssembly validates relaxed SIMD (www/features.js); a module
# that uses it fails validation elsewhere, so the baseline build stays for the rest. Both load
# through the same webclip.js: the glue wasm-bindgen writes for the relaxed module must equal
# trunk's, and this checks it.
#
# Only webclip itself is compiled again (`cargo rustc` passes the cfg to this crate alone):
# the dependencies are trunk's, as built a moment ago. Enabling `+relaxed-simd` crate-wide
# instead would rebuild them all, and one of them (macerator 0.5.2) does not compile with it.
# The next trunk build recompiles webclip once more, as after any change to it.
#
#   scripts/build-relaxed.sh [DIST]   (default: $TRUNK_STAGING_DIR, else dist)
set -euo pipefail
cd "$(dirname "$0")/.."
dist="${1:-${TRUNK_STAGING_DIR:-dist}}"
if [ "${TRUNK_PROFILE:-release}" != release ]; then
  echo "build-relaxed: debug build, baseline module only"
  exit 0
fi
start=$(date +%s)
cargo rustc --locked --lib --no-default-features --features webgpu --target wasm32-unknown-unknown --profile wasm-release \
  -- --cfg webclip_relaxed_simd
out=target/relaxed-bindgen
rm -rf "$out"
wasm-bindgen --target web --no-typescript --remove-name-section --out-dir "$out" --out-name webclip \
  target/wasm32-unknown-unknown/wasm-release/webclip.wasm
if ! cmp -s "$out/webclip.js" "$dist/webclip.js"; then
  diff "$out/webclip.js" "$dist/webclip.js" | head -20 >&2
  echo "build-relaxed: the relaxed module's glue differs from the baseline's; they cannot share webclip.js" >&2
  exit 1
fi
cp "$out/webclip_bg.wasm" "$dist/webclip_relaxed_bg.wasm"
echo "build-relaxed: webclip_relaxed_bg.wasm, $(($(stat -c %s "$dist/webclip_relaxed_bg.wasm") / 1048576)) MiB, in $(($(date +%s) - start)) s"
