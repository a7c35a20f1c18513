#!/usr/bin/env bash
# What scripts/gpu_bench.py needs on the lent GPU machine, built here: webclip's native release
# binary, stripped and gzipped (about 19 MB, in .devbin/), and the Vulkan loader's Debian
# packages (in .gl/, unpacked there by the run command: that machine has the NVIDIA driver's
# Vulkan ICD but may lack the loader). Both folders are git-ignored through .git/info/exclude
# and travel with `carry`. Then, in one device run (carry [".devbin", ".gl"]):
#
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; python3 scripts/gpu_bench.py --webclip .devbin/webclip.gz --out $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
for d in /.devbin/ /.gl/; do grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude; done
cargo build --release --locked
mkdir -p .devbin .gl /tmp/amd64/partial
strip -o .devbin/webclip target/release/webclip
gzip -f .devbin/webclip
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
apt-get "${o[@]}" update -qq
(cd .gl && apt-get "${o[@]}" download libvulkan1 >/dev/null)
ls -la .devbin .gl
