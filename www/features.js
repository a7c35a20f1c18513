// What the browser's WebAssembly can run, by validating tiny modules (a module that uses a
// feature the engine lacks fails validation; nothing is compiled or run).

// () -> v128 { f32x4.relaxed_madd(0, 0, 0) }: relaxed SIMD (Chrome 114+, Firefox 145+).
const RELAXED_SIMD = "AGFzbQEAAAABBQFgAAF7AwIBAAo9ATsA/QwAAAAAAAAAAAAAAAAAAAAA/QwAAAAAAAAAAAAAAAAAAAAA/QwAAAAAAAAAAAAAAAAAAAAA/YUCCw==";

const bytes = (base64) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

/// Whether this engine has relaxed SIMD, whose fused multiply-add the "relaxed" build of the
/// module uses in its CPU matrix products.
export const relaxedSimd = () => {
  try {
    return WebAssembly.validate(bytes(RELAXED_SIMD));
  } catch {
    return false;
  }
};
