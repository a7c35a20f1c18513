#!/usr/bin/env bash
# Set up a fresh Debian machine (Rust toolchain present) and run every test:
#   1. native tests: parity with transformers on the CPU backend and on wgpu over Vulkan
#      (Mesa's lavapipe), preprocessing, tokenizer, CLI, bad input;
#   2. the browser app built with trunk (three wasm modules: SIMD128, relaxed SIMD, and threaded) and packed
#      for npm, tested end to end in Debian's Chromium, against the page's own server and a
#      local HTTPS double of the Hugging Face hub; the wasm CPU kernels alone in all three builds.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
export PATH="$PWD/node_modules/.bin:$PATH"
# Mesa's Vulkan loader wants a runtime dir; without one it prints noise on every test.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

packages=()
ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || packages+=(mesa-vulkan-drivers)
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/firefox-esr ] || packages+=(firefox-esr) # the CPU engine in Firefox (tests/e2e/firefox.test.mjs)
command -v openssl >/dev/null || packages+=(openssl) # the hub double's test certificate
if [ ${#packages[@]} -gt 0 ]; then
  step "installing ${packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
fi
scripts/setup-web.sh

step "native tests (CPU and wgpu on Vulkan)"
cargo test --locked

step "browser build (trunk, release: the baseline module, then the relaxed-SIMD one and the threaded one) and the npm package"
trunk build --release
node scripts/package.mjs

step "the wasm kernels alone, built as the three modules are (tests/e2e/kernel.test.mjs checks them)"
tests/simd128/build.sh

step "browser tests (Chromium: WebGPU, CPU fallback on every module (threads in a cross-origin-isolated page), camera, cache, privacy, errors, embedding; the hub double, cut connections, offline, other origins, CSP, the npm package, backend choice; the wasm kernel; Firefox ESR)"
# A hung test fails after 10 minutes instead of holding the run.
node --test --test-timeout=600000 --test-reporter=spec tests/e2e/

step "all tests passed"
