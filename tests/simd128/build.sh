#!/usr/bin/env bash
# Build the kernel check twice, as the page's two modules are built: SIMD128, and with
# `--cfg webclip_relaxed_simd` (relaxed SIMD's fused multiply-add in the kernel). Output: target/simd128-check/{baseline,relaxed}.wasm (repository root).
set -euo pipefail
cd "$(dirname "$0")"
out=../../target/simd128-check
mkdir -p "$out"
for build in baseline relaxed; do
  flags="-C target-feature=+simd128"
  [ "$build" = relaxed ] && flags="$flags --cfg webclip_relaxed_simd"
  RUSTFLAGS="$flags" cargo build --quiet --release --target wasm32-unknown-unknown --target-dir "$out/$build"
  cp "$out/$build/wasm32-unknown-unknown/release/simd128_check.wasm" "$out/$build.wasm"
done
