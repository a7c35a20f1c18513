# The threaded module's compiler and linker flags (sourced by scripts/build-threads.sh and
# tests/simd128/build.sh).
#
# Every crate, the standard library included (rebuilt with `-Z build-std`: the shipped one has
# no atomics), is compiled with atomics and bulk memory, so the module's memory can be shared
# by Web Workers. Since Rust 1.92 (rust-lang/rust#147225) rustc no longer asks the linker for
# a shared memory when `+atomics` is on: without the flags below the memory is not shared and
# posting it to a worker throws DataCloneError. wasm-bindgen's thread support needs the TLS
# symbols and `__heap_base` exported.
THREADS_RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128"
THREADS_LINK_ARGS="-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296"
for symbol in __wasm_init_tls __tls_size __tls_align __tls_base __heap_base; do
  THREADS_LINK_ARGS="$THREADS_LINK_ARGS -C link-arg=--export=$symbol"
done
