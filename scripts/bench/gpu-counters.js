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
  // Dispatches by kernel: each pipeline's label (or its shader module's), so a run shows which
  // kernels the dispatches go to.
  let byKernel = {};
  const labels = new WeakMap();
  const moduleLabels = new WeakMap();
  const current = new WeakMap();
  const wrap = (proto, name, count) => {
    const original = proto?.[name];
    if (typeof original !== "function") return;
    proto[name] = function (...args) {
      count(args, this);
      return original.apply(this, args);
    };
  };
  const dispatch = (_, pass) => {
    c.dispatches++;
    const label = current.get(pass) || "?";
    byKernel[label] = (byKernel[label] ?? 0) + 1;
  };
  wrap(GPUComputePassEncoder.prototype, "setPipeline", ([pipeline], pass) => current.set(pass, labels.get(pipeline)));
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
  const pipelineLabel = (d) => d?.label || moduleLabels.get(d?.compute?.module) || "?";
  for (const name of ["createComputePipeline", "createComputePipelineAsync"]) {
    const original = GPUDevice.prototype[name];
    GPUDevice.prototype[name] = function (descriptor) {
      c.pipelines++;
      const result = original.call(this, descriptor);
      const label = pipelineLabel(descriptor);
      if (result instanceof Promise) return result.then((p) => (labels.set(p, label), p));
      labels.set(result, label);
      return result;
    };
  }
  const createShaderModule = GPUDevice.prototype.createShaderModule;
  GPUDevice.prototype.createShaderModule = function (descriptor) {
    c.shaderModules++;
    const module = createShaderModule.call(this, descriptor);
    // Without a label, the first function the WGSL defines after its helpers: the entry point.
    const entry = /@compute[^]*?fn\s+(\w+)/.exec(descriptor?.code || "")?.[1];
    moduleLabels.set(module, descriptor?.label || entry || "?");
    // A shader the browser's WGSL compiler rejects: its messages, with the offending lines.
    module.getCompilationInfo?.().then((info) => {
      const errors = info.messages.filter((m) => m.type === "error");
      if (!errors.length) return;
      const lines = (descriptor.code || "").split("\n");
      const what = errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}\n    ${lines[m.lineNum - 1]?.trim()}`).join("\n");
      console.error(`WGSL rejected (${descriptor?.label || entry}):\n${what}`);
    });
    return module;
  };
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
  const snapshot = () => ({ ...c, byKernel: { ...byKernel } });
  const reset = () => {
    c = zero();
    byKernel = {};
  };
  globalThis.__gpuCounters = { reset, snapshot };
  const channel = new BroadcastChannel("bench-gpu-counters");
  channel.onmessage = ({ data }) => {
    if (data?.op !== "reset" && data?.op !== "snapshot") return;
    // A reset answers with the counts it clears.
    channel.postMessage({ reply: data.id, scope, counts: snapshot() });
    if (data.op === "reset") reset();
  };
})();
