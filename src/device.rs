//! Choosing where the model runs: burn's wgpu backend (Vulkan/Metal/DX12 natively, WebGPU in
//! the browser) or its pure-Rust CPU backend, `flex`.

use burn::tensor::{DType, Device, FloatDType, Tensor};

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// burn's `flex` CPU backend (SIMD128 in wasm).
    Cpu,
    /// burn's wgpu backend on a GPU adapter.
    Wgpu,
}

impl std::str::FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" | "flex" => Ok(Self::Cpu),
            "wgpu" | "gpu" | "webgpu" => Ok(Self::Wgpu),
            _ => Err(Error::Input(format!("unknown backend {s:?}: use cpu or wgpu"))),
        }
    }
}

/// Kernels recorded before cubecl submits them to the GPU queue (its default is 32): a
/// ViT-B/32 image is about 740 kernels, so 25 submits at 32 and 6 at 128. Fewer, larger
/// submits cost less in WebGPU's per-submit validation, while the GPU still starts well before
/// the whole pass is recorded.
#[cfg(feature = "webgpu")]
const TASKS_PER_SUBMIT: usize = 128;

/// The float type the model computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// transformers' own: the parity bounds in the README.
    F32,
    /// Half the GPU memory and bandwidth, on a GPU with `shader-f16`: weights, activations and
    /// kernels in f16 (the README states what it costs against f32).
    F16,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Self::F32),
            "f16" | "float16" | "half" => Ok(Self::F16),
            _ => Err(Error::Input(format!("unknown precision {s:?}: use f32 or f16"))),
        }
    }
}

/// A ready device and what it is.
#[derive(Debug, Clone)]
pub struct ComputeDevice {
    pub device: Device,
    pub kind: BackendKind,
    pub precision: Precision,
    /// Adapter name (`llvmpipe (LLVM 15.0.6, 256 bits)`, `NVIDIA H100`, ...) or `CPU`.
    pub adapter: String,
    /// Graphics API wgpu drives the adapter with (`Vulkan`, `BrowserWebGpu`, ...); `None` on CPU.
    pub graphics_api: Option<String>,
    /// The largest buffer a kernel may bind, in bytes: what the device was given of the
    /// adapter's limits (cubecl asks for all of them, beyond WebGPU's 128 MiB default
    /// binding); `None` on the CPU.
    pub max_binding: Option<u64>,
}

impl ComputeDevice {
    pub fn cpu() -> Self {
        Self {
            device: Device::flex(),
            kind: BackendKind::Cpu,
            precision: Precision::F32,
            adapter: "CPU".into(),
            graphics_api: None,
            max_binding: None,
        }
    }

    /// Compute in f16 from now on: every float tensor later created on the device is f16,
    /// weights included (an f16 file goes to the GPU as it is stored; an f32 one is narrowed
    /// on the host, tensor by tensor). Only on a GPU whose adapter has `shader-f16`, and only
    /// before anything has been created on the device (burn fixes a device's default float
    /// type at its first tensor).
    pub fn use_f16(&mut self) -> Result<(), Error> {
        if self.kind != BackendKind::Wgpu {
            return Err(Error::Device("f16 runs on a GPU (the wgpu backend) only".into()));
        }
        if !self.device.supports_dtype(DType::F16) {
            return Err(Error::Device(format!("{} has no shader-f16: it computes in f32 only", self.adapter)));
        }
        self.device
            .configure(FloatDType::F16)
            .map_err(|e| Error::Device(format!("cannot switch the device to f16: {e:?}")))?;
        self.precision = Precision::F16;
        Ok(())
    }

    /// Acquire the default wgpu adapter (native only; the browser must use [`Self::wgpu_async`]).
    #[cfg(all(not(target_family = "wasm"), feature = "webgpu"))]
    pub fn wgpu() -> Result<Self, Error> {
        let (device, setup) = Device::wgpu_options()
            .tasks_max(TASKS_PER_SUBMIT)
            .init_with_setup()
            .map_err(|e| Error::Device(format!("no usable GPU adapter: {e}")))?;
        Ok(Self::from_setup(device, &setup))
    }

    /// Acquire the default wgpu adapter asynchronously (the only way in a browser).
    #[cfg(feature = "webgpu")]
    pub async fn wgpu_async() -> Result<Self, Error> {
        let (device, setup) = Device::wgpu_options()
            .tasks_max(TASKS_PER_SUBMIT)
            .init_with_setup_async()
            .await
            .map_err(|e| Error::Device(format!("no usable GPU adapter: {e}")))?;
        Ok(Self::from_setup(device, &setup))
    }

    #[cfg(feature = "webgpu")]
    fn from_setup(device: Device, setup: &burn::tensor::wgpu::WgpuSetup) -> Self {
        let info = setup.adapter.get_info();
        let limits = setup.device.limits();
        Self {
            device,
            kind: BackendKind::Wgpu,
            precision: Precision::F32,
            adapter: info.name.clone(),
            graphics_api: Some(format!("{:?}", info.backend)),
            max_binding: Some(limits.max_storage_buffer_binding_size.min(limits.max_buffer_size)),
        }
    }

    /// Whether the model `config` describes fits this device's buffers: said in words from the
    /// configuration alone, before any weight is fetched.
    pub fn check_fits(&self, config: &crate::ClipConfig) -> Result<(), Error> {
        let Some(limit) = self.max_binding else { return Ok(()) };
        let (name, values) = config.largest_tensor();
        let bytes = values as u64 * if self.precision == Precision::F16 { 2 } else { 4 };
        if bytes > limit {
            let mb = |b: u64| b as f64 / 1e6;
            return Err(Error::Device(format!(
                "this model does not fit {}: its {name} takes {:.0} MB, and the GPU binds at most {:.0} MB \
                 per buffer; use the CPU backend (or a smaller model)",
                self.adapter,
                mb(bytes),
                mb(limit)
            )));
        }
        Ok(())
    }

    /// `wgpu` or `cpu` as asked (native only).
    #[cfg(not(target_family = "wasm"))]
    pub fn new(kind: BackendKind) -> Result<Self, Error> {
        match kind {
            BackendKind::Cpu => Ok(Self::cpu()),
            #[cfg(feature = "webgpu")]
            BackendKind::Wgpu => Self::wgpu(),
            #[cfg(not(feature = "webgpu"))]
            BackendKind::Wgpu => {
                Err(Error::Device("this build has no GPU backend (built without the webgpu feature)".into()))
            }
        }
    }

    /// "wgpu on llvmpipe (Vulkan)" / "CPU (flex)", with ", f16" when it computes in f16.
    pub fn describe(&self) -> String {
        let f16 = if self.precision == Precision::F16 { ", f16" } else { "" };
        match (&self.kind, &self.graphics_api) {
            (BackendKind::Wgpu, Some(api)) => format!("wgpu on {} ({api}){f16}", self.adapter),
            _ => "CPU (burn flex)".into(),
        }
    }
}

/// Read a tensor back to the host as f32 values (async, as the browser requires).
pub async fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, Error> {
    let data = t.into_data_async().await.map_err(|e| Error::Device(format!("reading results back failed: {e:?}")))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| Error::Device(format!("unexpected result data: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_past_the_largest_binding_is_refused_in_words() {
        // WebGPU's default binding limit, which an adapter may raise.
        let gpu = ComputeDevice { max_binding: Some(128 << 20), kind: BackendKind::Wgpu, ..ComputeDevice::cpu() };
        let b32 = || crate::ClipConfig::from_json(r#"{"model_type": "clip"}"#).unwrap();
        let mut l14 = b32();
        l14.text_config.hidden_size = 768;
        let err = gpu.check_fits(&l14).unwrap_err().to_string();
        assert!(err.contains("token_embedding") && err.contains("152 MB") && err.contains("134 MB"), "{err}");
        // B/32's token embedding (49408 × 512, 101 MB) fits; the CPU has no such limit.
        gpu.check_fits(&b32()).unwrap();
        ComputeDevice::cpu().check_fits(&l14).unwrap();
        // In f16 the L/14 embedding takes 76 MB.
        ComputeDevice { precision: Precision::F16, ..gpu }.check_fits(&l14).unwrap();
    }
}
