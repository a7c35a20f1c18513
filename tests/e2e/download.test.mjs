// www/download.js's fetchBytes on its own, in Node (whose fetch is the WHATWG one): a
// download into a sink that copies each piece reads through one reused buffer (a BYOB
// reader), and survives a connection cut mid-file, resuming with Range. Run by
// scripts/test.sh with the browser tests.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { fetchBytes } from "../../www/download.js";

const SIZE = 3_000_000;
const FILE = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 31 + (i >> 9)) & 255));
let server;
let base;
let requests = [];
let cutFirst = true;

before(async () => {
  server = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range || "");
    requests.push(req.headers.range || null);
    if (range) {
      const from = Number(range[1]);
      res.writeHead(206, { "content-length": SIZE - from, "content-range": `bytes ${from}-${SIZE - 1}/${SIZE}`, etag: '"v1"' });
      return res.end(FILE.subarray(from));
    }
    res.writeHead(200, { "content-length": SIZE, etag: '"v1"' });
    if (!cutFirst) return res.end(FILE);
    // The connection drops after 1 MB.
    res.write(FILE.subarray(0, 1_000_000), () => setTimeout(() => res.socket.destroy(), 50));
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

/// Download with a sink that copies every piece (as the engine's does), recording which
/// readers were taken.
async function download({ reuse }) {
  const modes = [];
  const getReader = ReadableStream.prototype.getReader;
  ReadableStream.prototype.getReader = function (options) {
    modes.push(options?.mode ?? "default");
    return getReader.call(this, options);
  };
  const parts = [];
  const sink = {
    start: () => (parts.length = 0),
    write: (chunk) => void parts.push(Buffer.from(chunk)), // a copy
  };
  try {
    const got = await fetchBytes(`${base}/model.safetensors`, { what: { file: "model.safetensors" }, resumable: true, sink, reuse });
    return { got, bytes: Buffer.concat(parts), modes };
  } finally {
    ReadableStream.prototype.getReader = getReader;
  }
}

test("a copying sink is fed through one reused buffer, across a cut connection", async () => {
  requests = [];
  cutFirst = true;
  const { got, bytes, modes } = await download({ reuse: true });
  assert.deepEqual(requests, [null, "bytes=1000000-"], "resumed from the byte the cut stopped at");
  assert.equal(got.length, SIZE);
  assert.ok(bytes.equals(FILE), "the pieces, in order, are the file");
  assert.deepEqual(modes, ["byob", "byob"]);
});

test("a sink that keeps its pieces gets a new buffer for each", async () => {
  requests = [];
  cutFirst = false;
  const { bytes, modes } = await download({ reuse: false });
  assert.ok(bytes.equals(FILE));
  assert.deepEqual(modes, ["default"]);
});
