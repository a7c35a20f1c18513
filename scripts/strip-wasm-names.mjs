// trunk post-build hook: drop the wasm module's "name" custom section (function names for
// stack traces; 4-6 MB of a 22-26 MB module). trunk 0.21 cannot ask wasm-bindgen for
// --remove-name-section. Panic messages keep their text and source locations.
//
//   node scripts/strip-wasm-names.mjs [FILE.wasm]   (default: $TRUNK_STAGING_DIR/webclip_bg.wasm)

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const file = process.argv[2] || join(process.env.TRUNK_STAGING_DIR || "dist", "webclip_bg.wasm");
const wasm = readFileSync(file);
if (wasm.readUInt32BE(0) !== 0x0061736d) throw new Error(`${file} is not a WebAssembly module`);

function leb(at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = wasm[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

const kept = [wasm.subarray(0, 8)];
let dropped = 0;
for (let at = 8; at < wasm.length; ) {
  const start = at;
  const id = wasm[at];
  const [size, body] = leb(at + 1);
  at = body + size;
  if (at > wasm.length) throw new Error(`${file}: a section runs past the end`);
  if (id === 0) {
    const [len, name] = leb(body);
    if (wasm.toString("utf8", name, name + len) === "name") {
      dropped += at - start;
      continue;
    }
  }
  kept.push(wasm.subarray(start, at));
}
if (dropped) writeFileSync(file, Buffer.concat(kept));
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
console.log(`${file}: ${mb(wasm.length)} -> ${mb(wasm.length - dropped)} (name section: ${mb(dropped)})`);
