// Counts the WebGPU work an engine issues, for the benchmark only (never in the shipped app).
// bench.mjs injects this script into the page (Playwright's addInitScript) and prepends it to
// webclip's worker script (a route), before either engine starts, so both engines' calls go
// through the wrapped prototypes: wasm-bindgen's glue and onnxruntime-web call the methods by
// name at call time. Each scope (page, worker) answers "reset" and "snapshot" requests on a
// BroadcastChannel, so the page can add up the counts of every scope.
(() => {
  if (typeof GPUDevice === "undefined" || globalThis.__gpuCounters) return;
  const zero = () => ({
    dispatches: 0, submits: 0, commandBuffers: 0, computePasses: 0, pipelines: 0, shaderModules: 0,
    buffers: 0, bytesAllocated: 0, bytesWritten: 0, readBacks: 0, bytesRead: 0, copies: 0,
  });
  let c = zero();
  const wrap = (proto, name, count) => {
    const original = proto?.[name];
    if (typeof original !== "function") return;
    proto[name] = function (...args) {
      count(args, this);
      return original.apply(this, args);
    };
  };
  const dispatch = () => c.dispatches++;
  wrap(GPUComputePassEncoder.prototype, "dispatchWorkgroups", dispatch);
  wrap(GPUComputePassEncoder.prototype, "dispatchWorkgroupsIndirect", dispatch);
  wrap(GPUCommandEncoder.prototype, "beginComputePass", () => c.computePasses++);
  wrap(GPUCommandEncoder.prototype, "copyBufferToBuffer", () => c.copies++);
  wrap(GPUQueue.prototype, "submit", ([buffers]) => {
    c.submits++;
    c.commandBuffers += buffers?.length ?? 0;
  });
  wrap(GPUQueue.prototype, "writeBuffer", ([, , data, dataOffset, size]) => {
    const bytes = data?.byteLength ?? 0;
    const unit = data?.BYTES_PER_ELEMENT ?? 1;
    c.bytesWritten += size !== undefined ? size * unit : bytes - (dataOffset ?? 0) * unit;
  });
  wrap(GPUDevice.prototype, "createComputePipeline", () => c.pipelines++);
  wrap(GPUDevice.prototype, "createComputePipelineAsync", () => c.pipelines++);
  wrap(GPUDevice.prototype, "createShaderModule", () => c.shaderModules++);
  wrap(GPUDevice.prototype, "createBuffer", ([d]) => {
    c.buffers++;
    c.bytesAllocated += d?.size ?? 0;
    if (d?.mappedAtCreation) c.bytesWritten += d.size;
  });
  wrap(GPUBuffer.prototype, "mapAsync", ([mode, offset, size], buffer) => {
    if (mode & GPUMapMode.READ) {
      c.readBacks++;
      c.bytesRead += size ?? buffer.size - (offset ?? 0);
    }
  });
  const scope = typeof window === "undefined" ? "worker" : "page";
  globalThis.__gpuCounters = { reset: () => (c = zero()), snapshot: () => ({ ...c }) };
  const channel = new BroadcastChannel("bench-gpu-counters");
  channel.onmessage = ({ data }) => {
    if (data?.op !== "reset" && data?.op !== "snapshot") return;
    // A reset answers with the counts it clears.
    channel.postMessage({ reply: data.id, scope, counts: { ...c } });
    if (data.op === "reset") c = zero();
  };
})();
