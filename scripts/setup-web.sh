#!/usr/bin/env bash
# Install what the browser build needs, at the versions Trunk.toml pins (idempotent):
# the wasm32 target and the standard library's source, trunk 0.21.14, wasm-bindgen-cli 0.2.130 (= the wasm-bindgen crate in
# Cargo.lock), and playwright-core and puppeteer-core for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

rustup target list --installed | grep -qx wasm32-unknown-unknown || { step "adding the wasm32 target"; rustup target add wasm32-unknown-unknown; }
# The threaded module rebuilds the standard library with atomics (scripts/build-threads.sh).
rustup component list --installed | grep -q '^rust-src' || { step "adding rust-src"; rustup component add rust-src; }
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  step "installing trunk 0.21.14"
  cargo install trunk --version 0.21.14 --locked
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
  step "installing wasm-bindgen-cli 0.2.130"
  # --locked fails for this version (a webpki-roots conflict); the unlocked build works.
  cargo install wasm-bindgen-cli --version 0.2.130
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/puppeteer-core ]; then
  step "installing npm tools (playwright-core, puppeteer-core)"
  npm ci --no-audit --no-fund
fi
