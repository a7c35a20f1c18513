//! Loading Hugging Face `model.safetensors` into the model, and converting between dtypes.
//!
//! The module tree uses the checkpoint's key names, so a parameter's path *is* its key, with
//! four documented exceptions, all handled by [`KeyPath::stored`]:
//!
//! | burn parameter                    | checkpoint tensor        | why                              |
//! |-----------------------------------|--------------------------|----------------------------------|
//! | `<linear>.weight` `[in, out]`     | `<linear>.weight` `[out, in]` | burn multiplies `x · W`, torch `x · Wᵀ`: transposed on the host |
//! | `<layer norm>.gamma` / `.beta`    | `<layer norm>.weight` / `.bias` | burn's LayerNorm field names |
//! | `logit_scale` `[1]`               | `logit_scale` `[]`       | burn has no 0-d tensors          |
//! | `self_attn.qkv_proj.{weight,bias}` | `self_attn.{q,k,v}_proj.{weight,bias}` | one matmul for q, k and v: the three concatenated along the output dimension, in that order |
//!
//! Extra tensors (e.g. `position_ids` in older checkpoints) are ignored. Each tensor is decoded
//! to f32 on the host and moved to the device before the next is read, so peak memory stays
//! near one copy of the weights plus one tensor.

use std::borrow::Cow;
use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::Error;
use crate::config::ClipConfig;
use crate::model::ClipModel;
use crate::quant::QuantMatrix;

/// One stored tensor: its dtype, shape and little-endian bytes (borrowed from a file in
/// memory, or copied out of one that is not, such as a browser's ArrayBuffer).
#[derive(Debug, Clone)]
pub struct RawTensor<'a> {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Cow<'a, [u8]>,
}

/// Somewhere tensors can be read from by name.
pub trait TensorSource {
    /// The tensor, `None` if the source has no tensor of that name, or an error if it has
    /// one that cannot be read.
    fn tensor(&self, name: &str) -> Result<Option<RawTensor<'_>>, Error>;
}

/// A parsed safetensors file held in memory (or memory-mapped).
pub struct SafetensorsFile<'a> {
    inner: SafeTensors<'a>,
}

impl<'a> SafetensorsFile<'a> {
    /// Parse and validate the header: a truncated or corrupt file fails here, naming the cause.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let inner =
            SafeTensors::deserialize(bytes).map_err(|e| Error::WeightsFile(safetensors_message(e, bytes.len())))?;
        Ok(Self { inner })
    }

    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.names();
        names.sort_unstable();
        names
    }
}

impl TensorSource for SafetensorsFile<'_> {
    fn tensor(&self, name: &str) -> Result<Option<RawTensor<'_>>, Error> {
        let Ok(view) = self.inner.tensor(name) else { return Ok(None) };
        Ok(Some(RawTensor { dtype: view.dtype(), shape: view.shape().to_vec(), data: Cow::Borrowed(view.data()) }))
    }
}

fn safetensors_message(e: safetensors::SafeTensorError, len: usize) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => format!("the file is {len} bytes, too short for a safetensors header (truncated?)"),
        E::InvalidHeaderLength => {
            "the header length is larger than the file (truncated or not a safetensors file)".into()
        }
        E::InvalidHeader(_) | E::InvalidHeaderStart | E::InvalidHeaderDeserialization(_) => {
            format!("the header is not valid safetensors JSON ({e})")
        }
        E::MetadataIncompleteBuffer => {
            "the tensor data is shorter or longer than the header says (truncated or corrupt file)".into()
        }
        other => other.to_string(),
    }
}

/// Decode a stored F32 / F16 / BF16 tensor to f32 values.
pub fn decode_f32(name: &str, t: &RawTensor) -> Result<Vec<f32>, Error> {
    let d: &[u8] = &t.data;
    Ok(match t.dtype {
        Dtype::F32 => d.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => d.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => d.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => return Err(Error::Dtype { name: name.into(), dtype: format!("{other:?}") }),
    })
}

/// Build the model for `config` and fill every parameter from `source`.
pub fn load_model(config: &ClipConfig, source: &impl TensorSource, device: &Device) -> Result<ClipModel, Error> {
    config.validate()?;
    let mut loader =
        Loader { source, device: device.clone(), at: KeyPath::default(), error: None, host: HostWeights::default() };
    let mut model = config.init(device).map(&mut loader);
    match loader.error {
        Some(e) => Err(e),
        None => {
            model.pack_weights(&mut loader.host);
            Ok(model)
        }
    }
}

/// Where the module walk is: the field names and container types down to a parameter, and
/// from them the checkpoint key that parameter is stored under.
#[derive(Default)]
pub(crate) struct KeyPath {
    path: Vec<String>,
    containers: Vec<String>,
}

impl KeyPath {
    pub(crate) fn enter(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    pub(crate) fn exit(&mut self) {
        self.path.pop();
        self.containers.pop();
    }

    /// Where the current parameter (`expected` is its burn shape) is stored: one checkpoint
    /// tensor, or for the fused `qkv_proj` three, whose burn shapes split `expected`'s last
    /// dimension and which are concatenated along it.
    pub(crate) fn stored(&self, expected: &[usize]) -> Vec<(Stored, Vec<usize>)> {
        let n = self.path.len();
        let field = self.path.last().map(String::as_str).unwrap_or_default();
        let parent = self.containers.last().map(String::as_str).unwrap_or_default();
        if n >= 2 && self.path[n - 2] == "qkv_proj" {
            let mut part = expected.to_vec();
            if let Some(last) = part.last_mut() {
                *last /= 3;
            }
            let base = self.path[..n - 2].join(".");
            return ["q_proj", "k_proj", "v_proj"]
                .into_iter()
                .map(|p| (Self::at(&format!("{base}.{p}"), parent, field, &part), part.clone()))
                .collect();
        }
        vec![(Self::at(&self.path[..n.saturating_sub(1)].join("."), parent, field, expected), expected.to_vec())]
    }

    /// The checkpoint key and stored shape of field `field` of a `parent` module at `prefix`;
    /// `transpose` when the stored tensor is a torch Linear weight (`[out, in]`).
    fn at(prefix: &str, parent: &str, field: &str, expected: &[usize]) -> Stored {
        let key = |leaf: &str| if prefix.is_empty() { leaf.to_string() } else { format!("{prefix}.{leaf}") };
        let (name, transpose) = match (parent, field) {
            ("Struct:Linear", "weight") => (key("weight"), true),
            ("Struct:LayerNorm", "gamma") => (key("weight"), false),
            ("Struct:LayerNorm", "beta") => (key("bias"), false),
            _ => (key(field), false),
        };
        let shape = if transpose { expected.iter().rev().copied().collect() } else { expected.to_vec() };
        let table = (parent, field) == ("Struct:TokenEmbedding", "weight");
        Stored { name, shape, transpose, table }
    }
}

/// How a parameter is stored in the checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub name: String,
    pub shape: Vec<usize>,
    pub transpose: bool,
    /// The token embedding's table, which can stay 8-bit as a whole ([`crate::model::embedding`]).
    pub table: bool,
}

impl Stored {
    /// Check a stored tensor's shape and dtype against what the model expects.
    pub(crate) fn check(&self, dtype: Dtype, shape: &[usize]) -> Result<(), Error> {
        let scalar_ok = self.name == "logit_scale" && shape.is_empty() && self.shape == [1];
        if shape != self.shape.as_slice() && !scalar_ok {
            return Err(Error::Shape { name: self.name.clone(), found: shape.to_vec(), expected: self.shape.clone() });
        }
        match dtype {
            Dtype::F32 | Dtype::F16 | Dtype::BF16 => Ok(()),
            Dtype::I8 if crate::quant::quantizable(shape) => Ok(()),
            other => Err(Error::Dtype { name: self.name.clone(), dtype: format!("{other:?}") }),
        }
    }

    /// Check the scales of an 8-bit tensor (see [`crate::quant`]).
    pub(crate) fn check_scales(&self, dtype: Dtype, shape: &[usize]) -> Result<(), Error> {
        let name = crate::quant::scale_key(&self.name);
        let expected = crate::quant::scale_shape(&self.shape);
        if shape != expected.as_slice() {
            return Err(Error::Shape { name, found: shape.to_vec(), expected });
        }
        match dtype {
            Dtype::F32 | Dtype::F16 | Dtype::BF16 => Ok(()),
            other => Err(Error::Dtype { name, dtype: format!("{other:?}") }),
        }
    }

    /// An 8-bit tensor with its scales: a Linear weight stays 8-bit, as a matrix in the
    /// checkpoint's `[out, in]`, and so does the token embedding's table where it stays on the
    /// host (for `device`, [`QuantMatrix::stays_on_host`]); anything else is widened to f32
    /// values in burn's layout.
    /// Bytes the tensor owns (streamed in) become the matrix's without a copy.
    pub(crate) fn quantized(&self, raw: RawTensor, scales: Vec<f32>, device: &Device) -> Result<Quantized, Error> {
        self.check(raw.dtype, &raw.shape)?;
        if self.transpose || (self.table && QuantMatrix::stays_on_host(device)) {
            let values: Vec<i8> = match raw.data {
                Cow::Owned(bytes) => bytemuck::allocation::cast_vec(bytes),
                Cow::Borrowed(bytes) => bytemuck::cast_slice(bytes).to_vec(),
            };
            let matrix = QuantMatrix::new(&self.name, values, scales, self.shape[0], self.shape[1])?;
            return Ok(Quantized::Matrix(matrix));
        }
        let values: &[i8] = bytemuck::cast_slice(&raw.data);
        if scales.len() * crate::quant::BLOCK != values.len() {
            return Err(Error::WeightsFile(format!("tensor {} does not match its scales", self.name)));
        }
        Ok(Quantized::Values(crate::quant::dequantize(values, &scales)))
    }

    /// The width of the tensor's last dimension in burn's layout.
    pub(crate) fn cols(&self) -> usize {
        if self.transpose { self.shape[0] } else { self.shape.last().copied().unwrap_or(1) }
    }

    /// The tensor's values as f32, in burn's layout (Linear weights transposed on the host),
    /// decoded and transposed in one pass into one new buffer.
    pub(crate) fn values(&self, raw: &RawTensor) -> Result<Vec<f32>, Error> {
        self.check(raw.dtype, &raw.shape)?;
        if !self.transpose {
            return decode_f32(&self.name, raw);
        }
        let (rows, cols) = (self.shape[0], self.shape[1]); // [out, in]
        let size = raw.dtype.bitsize() / 8;
        let d: &[u8] = &raw.data;
        let at = |i: usize| -> f32 {
            let b = &d[i * size..];
            match raw.dtype {
                Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
                _ => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            }
        };
        let mut t = Vec::with_capacity(rows * cols);
        for c in 0..cols {
            t.extend((0..rows).map(|r| at(r * cols + c)));
        }
        Ok(t)
    }
}

/// The parts of one parameter (q, k and v: `[rows, cols]` each in burn's layout, or `[cols]`)
/// side by side along the last dimension, assembled on the host: the device receives the
/// parameter as one tensor. Concatenating on the device instead leaves the parts' buffers
/// behind as holes too small for the next parameter, which in a browser's wasm heap are never
/// given back (ViT-B/32 on the CPU: 120 MB).
pub(crate) struct SideBySide {
    values: Vec<f32>,
    cols: usize,
    width: usize,
    missing: usize,
}

impl SideBySide {
    /// Room for `parts` parts of `len` values, each `cols` wide.
    pub(crate) fn new(parts: usize, len: usize, cols: usize) -> Self {
        Self { values: vec![0.0; parts * len], cols, width: parts * cols, missing: parts }
    }

    /// Part `index`'s values, in its columns.
    pub(crate) fn put(&mut self, index: usize, part: &[f32]) {
        if self.cols > 0 {
            for (r, row) in part.chunks_exact(self.cols).enumerate() {
                let at = r * self.width + index * self.cols;
                self.values[at..at + self.cols].copy_from_slice(row);
            }
        }
        self.missing -= 1;
    }

    /// Whether every part is in.
    pub(crate) fn is_full(&self) -> bool {
        self.missing == 0
    }

    pub(crate) fn into_values(self) -> Vec<f32> {
        self.values
    }
}

/// 8-bit Linear weights kept on the host for their layer's own product
/// ([`QuantMatrix::stays_on_host`]), by the id of the parameter they fill; that parameter
/// holds an empty `[0, d_out]` tensor, as a packed layer's does.
pub(crate) type HostWeights = HashMap<ParamId, QuantMatrix>;

/// An 8-bit Linear weight's place in the module, once it is kept on the host: an empty
/// `[0, …]` tensor of the parameter's other dimensions.
pub(crate) fn held<const D: usize>(
    param: Param<Tensor<D>>,
    mut expected: [usize; D],
    matrix: QuantMatrix,
    host: &mut HostWeights,
    device: &Device,
) -> Param<Tensor<D>> {
    host.insert(param.id, matrix);
    expected[0] = 0;
    Param::initialized(param.id, Tensor::empty(expected, device))
}

/// A parameter as loaded: a tensor on the device, or an 8-bit Linear weight on the host.
enum Loaded<const D: usize> {
    Tensor(Tensor<D>),
    Host(QuantMatrix),
}

/// An 8-bit tensor as loaded: kept 8-bit, or widened.
pub(crate) enum Quantized {
    Matrix(QuantMatrix),
    Values(Vec<f32>),
}

/// Walks the module tree; each parameter is replaced by the tensor stored under its key.
struct Loader<'s, S> {
    source: &'s S,
    device: Device,
    at: KeyPath,
    error: Option<Error>,
    host: HostWeights,
}

impl<S: TensorSource> Loader<'_, S> {
    fn load<const D: usize>(&self, expected: [usize; D]) -> Result<Loaded<D>, Error> {
        let stored = self.at.stored(&expected);
        let count = stored.len();
        let mut side: Option<SideBySide> = None;
        let mut matrices = Vec::new();
        for (index, (stored, _)) in stored.into_iter().enumerate() {
            let raw = self.source.tensor(&stored.name)?.ok_or_else(|| Error::MissingTensor(stored.name.clone()))?;
            let values = if raw.dtype == Dtype::I8 {
                stored.check(raw.dtype, &raw.shape)?;
                match stored.quantized(raw, self.scales(&stored)?, &self.device)? {
                    Quantized::Matrix(m) => {
                        matrices.push(m);
                        continue;
                    }
                    Quantized::Values(values) => values,
                }
            } else {
                let values = stored.values(&raw)?;
                drop(raw);
                values
            };
            if count == 1 {
                return Ok(Loaded::Tensor(Tensor::from_data(TensorData::new(values, expected), &self.device)));
            }
            side.get_or_insert_with(|| SideBySide::new(count, values.len(), stored.cols())).put(index, &values);
        }
        if !matrices.is_empty() {
            if side.is_some() {
                return Err(Error::WeightsFile("q, k and v must be all 8-bit or all float".into()));
            }
            let matrix = QuantMatrix::stack(matrices);
            if QuantMatrix::stays_on_host(&self.device) {
                return Ok(Loaded::Host(matrix));
            }
            // A Linear weight: rank 2 whatever D says.
            return Ok(Loaded::Tensor(Tensor::from_dispatch(matrix.to_device(&self.device).into_dispatch())));
        }
        let values = side.map(SideBySide::into_values).unwrap_or_default();
        Ok(Loaded::Tensor(Tensor::from_data(TensorData::new(values, expected), &self.device)))
    }

    /// The scales of the 8-bit tensor `stored`, as f32.
    fn scales(&self, stored: &Stored) -> Result<Vec<f32>, Error> {
        let key = crate::quant::scale_key(&stored.name);
        let raw = self.source.tensor(&key)?.ok_or_else(|| Error::MissingTensor(key.clone()))?;
        stored.check_scales(raw.dtype, &raw.shape)?;
        decode_f32(&key, &raw)
    }
}

impl<S: TensorSource> ModuleMapper for Loader<'_, S> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        // `lazy_shape` reads the declared shape without running the (discarded) initializer.
        let expected: [usize; D] = param.lazy_shape().dims();
        match self.load(expected) {
            Ok(Loaded::Tensor(tensor)) => Param::initialized(param.id, tensor),
            Ok(Loaded::Host(matrix)) => held(param, expected, matrix, &mut self.host, &self.device),
            Err(e) => {
                self.error = Some(e);
                param
            }
        }
    }
}

/// The types `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
    BF16,
    /// webclip's 8-bit layout ([`crate::quant`]); tensors it does not cover stay f32.
    Q8,
}

impl std::str::FromStr for FloatType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Self::F32),
            "f16" | "float16" | "half" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::BF16),
            "q8" | "int8" => Ok(Self::Q8),
            _ => Err(Error::Input(format!("unknown dtype {s:?}: use f16, bf16, f32 or q8"))),
        }
    }
}

/// Rewrite a weights file (safetensors, or a PyTorch `pytorch_model.bin`) as safetensors with
/// every float tensor stored as `to`; other tensors (integer `position_ids`) are kept, and so is
/// a safetensors file's metadata. Values beyond f16's range are an error, not a silent infinity.
/// An 8-bit file cannot be converted again: its precision is gone.
pub fn convert(bytes: &[u8], to: FloatType) -> Result<Vec<u8>, Error> {
    match crate::pytorch::WeightsFormat::detect(bytes) {
        crate::pytorch::WeightsFormat::Pytorch => {
            let file = crate::pytorch::PytorchCheckpoint::from_bytes(bytes.to_vec())?;
            // What Hugging Face's own conversions write.
            let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
            convert_source(&file.names(), &file, Some(meta), to)
        }
        crate::pytorch::WeightsFormat::Safetensors => {
            let file = SafetensorsFile::parse(bytes)?;
            let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| Error::WeightsFile(e.to_string()))?;
            convert_source(&file.names(), &file, metadata.metadata().clone(), to)
        }
    }
}

fn convert_source(
    names: &[&str],
    source: &impl TensorSource,
    metadata: Option<HashMap<String, String>>,
    to: FloatType,
) -> Result<Vec<u8>, Error> {
    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for &name in names {
        let raw = source.tensor(name)?.ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        let (dtype, data) = match raw.dtype {
            Dtype::F32 | Dtype::F16 | Dtype::BF16 if to == FloatType::Q8 && crate::quant::quantizable(&raw.shape) => {
                let (values, scales) = crate::quant::quantize(&decode_f32(name, &raw)?);
                let scale_bytes = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                let shape = crate::quant::scale_shape(&raw.shape);
                out.push((crate::quant::scale_key(name), Dtype::F16, shape, scale_bytes));
                (Dtype::I8, bytemuck::cast_slice(&values).to_vec())
            }
            Dtype::F32 | Dtype::F16 | Dtype::BF16 => {
                let values = decode_f32(name, &raw)?;
                encode(name, &values, to)?
            }
            Dtype::I8 => {
                return Err(Error::Input(format!(
                    "tensor {name} is already 8-bit: convert from the f32 or f16 weights instead"
                )));
            }
            other => (other, raw.data.into_owned()),
        };
        out.push((name.to_string(), dtype, raw.shape.to_vec(), data));
    }
    let metadata = match to {
        FloatType::Q8 => {
            let mut m = metadata.unwrap_or_default();
            m.insert("webclip.quantization".into(), format!("q8-block{}", crate::quant::BLOCK));
            Some(m)
        }
        _ => metadata,
    };
    let views: Vec<(String, safetensors::tensor::TensorView)> = out
        .iter()
        .map(|(n, d, s, b)| {
            safetensors::tensor::TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::WeightsFile(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize(views, metadata).map_err(|e| Error::WeightsFile(e.to_string()))
}

fn encode(name: &str, values: &[f32], to: FloatType) -> Result<(Dtype, Vec<u8>), Error> {
    let overflow = || Error::Input(format!("tensor {name} has values beyond the range of {to:?}"));
    Ok(match to {
        FloatType::F32 | FloatType::Q8 => (Dtype::F32, values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        FloatType::F16 => {
            let mut b = Vec::with_capacity(values.len() * 2);
            for &v in values {
                let h = half::f16::from_f32(v);
                if h.is_infinite() && v.is_finite() {
                    return Err(overflow());
                }
                b.extend_from_slice(&h.to_le_bytes());
            }
            (Dtype::F16, b)
        }
        FloatType::BF16 => (Dtype::BF16, values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::SideBySide;

    #[test]
    fn parts_go_side_by_side_along_the_last_dimension() {
        // Three [2, 2] parts into [2, 6]; filled out of order, as a checkpoint may store them.
        let mut side = SideBySide::new(3, 4, 2);
        side.put(1, &[5.0, 6.0, 7.0, 8.0]);
        assert!(!side.is_full());
        side.put(0, &[1.0, 2.0, 3.0, 4.0]);
        side.put(2, &[9.0, 10.0, 11.0, 12.0]);
        assert!(side.is_full());
        assert_eq!(side.into_values(), [1.0, 2.0, 5.0, 6.0, 9.0, 10.0, 3.0, 4.0, 7.0, 8.0, 11.0, 12.0]);
        // Biases: [cols] each, one row.
        let mut side = SideBySide::new(2, 2, 2);
        side.put(0, &[1.0, 2.0]);
        side.put(1, &[3.0, 4.0]);
        assert_eq!(side.into_values(), [1.0, 2.0, 3.0, 4.0]);
    }
}
