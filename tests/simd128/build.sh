#!/usr/bin/env bash
# Build the kernel check three times, as the page's three modules are built: SIMD128, with
# `--cfg webclip_relaxed_simd` (relaxed SIMD's fused multiply-add and 8-bit dot product in the
# kernels), and threaded (relaxed, with the `threads` feature, shared memory and the standard
# library rebuilt with atomics: scripts/threads-flags.sh). Output (repository root):
# target/simd128-check/{baseline,relaxed}.wasm and target/simd128-check/threads-pkg/ (the
# threaded module with wasm-bindgen's glue, and a worker that runs the checks).
set -euo pipefail
cd "$(dirname "$0")"
out=../../target/simd128-check
mkdir -p "$out"
for build in baseline relaxed; do
  flags="-C target-feature=+simd128"
  [ "$build" = relaxed ] && flags="$flags --cfg webclip_relaxed_simd"
  RUSTFLAGS="$flags" cargo build --quiet --locked --release --target wasm32-unknown-unknown --target-dir "$out/$build"
  cp "$out/$build/wasm32-unknown-unknown/release/simd128_check.wasm" "$out/$build.wasm"
done
. ../../scripts/threads-flags.sh
RUSTC_BOOTSTRAP=1 RUSTFLAGS="$THREADS_RUSTFLAGS --cfg webclip_relaxed_simd $THREADS_LINK_ARGS" \
  cargo build --quiet --locked --release --features threads --target wasm32-unknown-unknown --target-dir "$out/threads" \
  -Z build-std=panic_abort,std
rm -rf "$out/threads-pkg"
wasm-bindgen --target web --no-typescript --out-dir "$out/threads-pkg" "$out/threads/wasm32-unknown-unknown/release/simd128_check.wasm"
cp worker.js index.html "$out/threads-pkg/"
