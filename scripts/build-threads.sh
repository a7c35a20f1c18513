#!/usr/bin/env bash
# trunk post-build hook (release builds only, after scripts/build-relaxed.sh): the engine's
# third module, threaded, in DIST/threads/ with its own glue (webclip.js, and wasm-bindgen-
# rayon's worker helper under snippets/). The worker loads it on the CPU where the page is
# cross-origin isolated (shared memory needs it) and relaxed SIMD validates: it is the relaxed
# module's kernels (`--cfg webclip_relaxed_simd`) with every product's panels and flex's ops
# spread over a pool of Web Workers (feature `threads`, src/kernels/parallel.rs).
#
# CPU only: built without the `webgpu` feature, since cubecl-wgpu does not compile with
# atomics. The standard library is rebuilt with atomics (`-Z build-std`, on the pinned stable
# toolchain through RUSTC_BOOTSTRAP=1; needs `rustup component add rust-src`). Its own target
# dir (target/threads) keeps trunk's and its flags apart; the linker flags go to webclip
# alone (`cargo rustc -- …`), so the dependencies' builds stay cached. Cold: about 15 minutes
# here; warm: under a minute.
#
#   scripts/build-threads.sh [DIST]   (default: $TRUNK_STAGING_DIR, else dist)
set -euo pipefail
cd "$(dirname "$0")/.."
dist="${1:-${TRUNK_STAGING_DIR:-dist}}"
if [ "${TRUNK_PROFILE:-release}" != release ]; then
  echo "build-threads: debug build, no threaded module"
  exit 0
fi
. scripts/threads-flags.sh
start=$(date +%s)
target=target/threads
# shellcheck disable=SC2086 # the flags are words
RUSTC_BOOTSTRAP=1 RUSTFLAGS="$THREADS_RUSTFLAGS" cargo rustc --locked --lib --no-default-features --features threads \
  --target wasm32-unknown-unknown --profile wasm-release --target-dir "$target" -Z build-std=panic_abort,std \
  -- --cfg webclip_relaxed_simd $THREADS_LINK_ARGS
rm -rf "$dist/threads"
wasm-bindgen --target web --no-typescript --remove-name-section --out-dir "$dist/threads" --out-name webclip \
  "$target/wasm32-unknown-unknown/wasm-release/webclip.wasm"
echo "build-threads: threads/webclip_bg.wasm, $(($(stat -c %s "$dist/threads/webclip_bg.wasm") / 1048576)) MiB, in $(($(date +%s) - start)) s"
