//! Building the model from a `model.safetensors` while it downloads.
//!
//! The bytes are pushed in as they arrive. A safetensors file is its header, then its tensors
//! back to back, so each tensor can be decoded and moved to the device as soon as its last
//! byte is in, and its bytes dropped. Nothing else is kept: the peak is the model on its
//! device plus one tensor in flight, instead of the whole file and the model (and in a
//! browser, the file is never in one buffer at all). The header is checked against the model
//! before any tensor data arrives, so a wrong file fails at its first kilobytes.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::Dtype;

use crate::Error;
use crate::config::ClipConfig;
use crate::model::ClipModel;
use crate::weights::{KeyPath, RawTensor, Stored};

/// A header longer than this is not a CLIP checkpoint's (B/32's is 26 KB).
const MAX_HEADER: u64 = 100_000_000;

/// A model being built from a safetensors file that arrives in pieces.
pub struct WeightStream {
    /// The model with its parameters not yet initialised.
    skeleton: ClipModel,
    /// Checkpoint key → how the model wants it, for every parameter.
    wanted: HashMap<String, Stored>,
    state: State,
    received: u64,
    /// Tensors already on the device, flat, by checkpoint key.
    loaded: HashMap<String, Tensor<1>>,
    device: Device,
}

enum State {
    /// Reading the 8-byte header length.
    Length(Vec<u8>),
    /// Reading the JSON header of `len` bytes.
    Header { len: usize, bytes: Vec<u8> },
    /// Reading tensor data: `tensors` in file order, the `next` one starting at data offset
    /// `at`, its bytes so far in `pending`.
    Data { tensors: Vec<Entry>, next: usize, at: usize, pending: Pending },
}

/// The bytes of the tensor being received.
#[derive(Default)]
enum Pending {
    #[default]
    None,
    /// Kept as they come, to be decoded (f16, bf16) or transposed (Linear weights) at the end.
    Raw(Vec<u8>),
    /// An f32 tensor the model takes as stored, received straight into its final buffer, so
    /// that the largest tensors (the token embedding, 101 MB in B/32) are never copied.
    F32 { values: Vec<f32>, filled: usize },
}

impl Pending {
    fn for_entry(entry: &Entry, stored: &Stored) -> Self {
        let bytes = entry.end - entry.start;
        if entry.dtype == Dtype::F32 && !stored.transpose && cfg!(target_endian = "little") {
            Self::F32 { values: vec![0f32; bytes / 4], filled: 0 }
        } else {
            Self::Raw(Vec::with_capacity(bytes))
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        match self {
            Self::None => {}
            Self::Raw(raw) => raw.extend_from_slice(bytes),
            Self::F32 { values, filled } => {
                let dst: &mut [u8] = bytemuck::cast_slice_mut(values.as_mut_slice());
                dst[*filled..*filled + bytes.len()].copy_from_slice(bytes);
                *filled += bytes.len();
            }
        }
    }
}

/// A tensor of the file, where its bytes are.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
    /// `false` for tensors the model has no use for (such as `position_ids`): skipped.
    wanted: bool,
}

impl WeightStream {
    /// Start building the model `config` describes on `device`.
    pub fn new(config: &ClipConfig, device: &Device) -> Result<Self, Error> {
        config.validate()?;
        let skeleton = config.init(device);
        let mut planner = Planner { at: KeyPath::default(), wanted: HashMap::new() };
        skeleton.visit(&mut planner);
        Ok(Self {
            skeleton,
            wanted: planner.wanted,
            state: State::Length(Vec::with_capacity(8)),
            received: 0,
            loaded: HashMap::new(),
            device: device.clone(),
        })
    }

    /// Bytes pushed so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next bytes of the file. Fails as soon as the file is seen to be unusable: not
    /// safetensors, a tensor missing or of the wrong shape or type, or more bytes than the
    /// header accounts for.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        self.received += bytes.len() as u64;
        while !bytes.is_empty() {
            match &mut self.state {
                State::Length(got) => {
                    let take = (8 - got.len()).min(bytes.len());
                    got.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if got.len() == 8 {
                        let len = u64::from_le_bytes(got[..8].try_into().expect("8 bytes"));
                        if len > MAX_HEADER {
                            return Err(Error::WeightsFile(
                                "the header length is larger than the file (truncated or not a safetensors file)"
                                    .into(),
                            ));
                        }
                        let len = len as usize;
                        self.state = State::Header { len, bytes: Vec::with_capacity(len) };
                    }
                }
                State::Header { len, bytes: got } => {
                    let take = (*len - got.len()).min(bytes.len());
                    got.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if got.len() == *len {
                        let json = std::mem::take(got);
                        let tensors = self.plan(&json)?;
                        self.state = State::Data { tensors, next: 0, at: 0, pending: Pending::None };
                        self.take_complete()?;
                    }
                }
                State::Data { tensors, next, at, pending } => {
                    let Some(entry) = tensors.get(*next) else {
                        return Err(Error::WeightsFile(
                            "the tensor data is shorter or longer than the header says (truncated or corrupt file)"
                                .into(),
                        ));
                    };
                    let take = (entry.end - *at).min(bytes.len());
                    if entry.wanted {
                        if *at == entry.start {
                            *pending = Pending::for_entry(entry, &self.wanted[&entry.name]);
                        }
                        pending.extend(&bytes[..take]);
                    }
                    bytes = &bytes[take..];
                    *at += take;
                    if *at == entry.end {
                        self.take_complete()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The model, once every byte is in.
    pub fn finish(mut self) -> Result<ClipModel, Error> {
        let complete = match &self.state {
            State::Data { tensors, next, .. } => *next == tensors.len(),
            _ => false,
        };
        if !complete {
            return Err(Error::WeightsFile(match self.state {
                State::Length(_) => {
                    format!("the file is {} bytes, too short for a safetensors header (truncated?)", self.received)
                }
                State::Header { .. } => {
                    "the header length is larger than the file (truncated or not a safetensors file)".into()
                }
                State::Data { .. } => {
                    "the tensor data is shorter or longer than the header says (truncated or corrupt file)".into()
                }
            }));
        }
        let mut filler = Filler { at: KeyPath::default(), loaded: &mut self.loaded, error: None };
        let model = self.skeleton.map(&mut filler);
        match filler.error {
            Some(e) => Err(e),
            None => Ok(model),
        }
    }

    /// Parse the header, check it against the model, and list the tensors in file order.
    fn plan(&self, json: &[u8]) -> Result<Vec<Entry>, Error> {
        let metadata: safetensors::tensor::Metadata = serde_json::from_slice(json)
            .map_err(|e| Error::WeightsFile(format!("the header is not valid safetensors JSON ({e})")))?;
        let mut tensors: Vec<(usize, Entry)> = Vec::new();
        for (name, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            let numel: Option<usize> = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let bytes = numel.and_then(|n| n.checked_mul(info.dtype.bitsize())).map(|b| b / 8);
            if end < start || bytes != Some(end - start) {
                return Err(Error::WeightsFile(format!("tensor {name} has inconsistent offsets (corrupt header)")));
            }
            let wanted = match self.wanted.get(&name) {
                Some(stored) => {
                    stored.check(info.dtype, &info.shape)?;
                    true
                }
                None => false,
            };
            tensors.push((start, Entry { name, dtype: info.dtype, shape: info.shape.clone(), start, end, wanted }));
        }
        // Back to back, in offset order, as safetensors writes them (and its reader requires).
        tensors.sort_by_key(|(start, e)| (*start, e.end));
        let mut at = 0;
        for (start, e) in &tensors {
            if *start != at {
                return Err(Error::WeightsFile(format!(
                    "tensor {} does not follow the one before it (corrupt header)",
                    e.name
                )));
            }
            at = e.end;
        }
        if let Some(missing) = self.wanted.keys().filter(|k| !tensors.iter().any(|(_, e)| &e.name == *k)).min() {
            return Err(Error::MissingTensor(missing.clone()));
        }
        Ok(tensors.into_iter().map(|(_, e)| e).collect())
    }

    /// Move every complete tensor at the front of the queue to the device (several when some
    /// are empty).
    fn take_complete(&mut self) -> Result<(), Error> {
        let State::Data { tensors, next, at, pending } = &mut self.state else { return Ok(()) };
        while let Some(entry) = tensors.get(*next) {
            if *at != entry.end {
                break;
            }
            if entry.wanted {
                let stored = &self.wanted[&entry.name];
                let raw =
                    |data: Vec<u8>| RawTensor { dtype: entry.dtype, shape: entry.shape.clone(), data: data.into() };
                let values = match std::mem::take(pending) {
                    Pending::F32 { values, .. } => values,
                    Pending::Raw(data) => stored.values(&raw(data))?,
                    // An empty tensor: no byte of it ever arrived.
                    Pending::None => stored.values(&raw(Vec::new()))?,
                };
                let n = values.len();
                self.loaded
                    .insert(entry.name.clone(), Tensor::<1>::from_data(TensorData::new(values, [n]), &self.device));
            }
            *next += 1;
        }
        Ok(())
    }
}

/// Records how each parameter is stored.
struct Planner {
    at: KeyPath,
    wanted: HashMap<String, Stored>,
}

impl ModuleVisitor for Planner {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        for (stored, _) in self.at.stored(&param.lazy_shape().dims::<D>()) {
            self.wanted.insert(stored.name.clone(), stored);
        }
    }
}

/// Puts the loaded tensors in place, in their shapes.
struct Filler<'a> {
    at: KeyPath,
    loaded: &'a mut HashMap<String, Tensor<1>>,
    error: Option<Error>,
}

impl ModuleMapper for Filler<'_> {
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
        let expected: [usize; D] = param.lazy_shape().dims();
        let mut parts = Vec::new();
        for (stored, shape) in self.at.stored(&expected) {
            match self.loaded.remove(&stored.name) {
                Some(flat) => parts.push(flat.reshape::<D, _>(<[usize; D]>::try_from(shape).expect("rank D"))),
                None => {
                    self.error = Some(Error::MissingTensor(stored.name));
                    return param;
                }
            }
        }
        let tensor = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::cat(parts, D - 1) };
        Param::initialized(param.id, tensor)
    }
}
