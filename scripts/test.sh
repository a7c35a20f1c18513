#!/usr/bin/env bash
# Set up a fresh Debian machine (Rust toolchain present) and run every test.
# Installs: Mesa's lavapipe (Vulkan on the CPU) for the wgpu parity tests, and the
# wasm32-unknown-unknown target, because the library must keep building for the browser.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

if ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1; then
  step "installing mesa-vulkan-drivers (lavapipe)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || { step "adding the wasm32 target"; rustup target add wasm32-unknown-unknown; }

step "native tests (CPU and wgpu on Vulkan)"
cargo test --locked

step "library build for wasm32-unknown-unknown"
cargo build --locked --lib --target wasm32-unknown-unknown

step "all tests passed"
