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
use crate::quant::QuantMatrix;
use crate::weights::{HostWeights, KeyPath, Quantized, RawTensor, SideBySide, Stored, decode_f32, held};

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
    /// Every checkpoint key of a parameter stored as several (q, k and v), by each of them.
    groups: HashMap<String, Vec<String>>,
    /// Parameters stored as several (q, k and v) being assembled, by their first part's key.
    sides: HashMap<String, SideBySide>,
    /// 8-bit tensors waiting for their scales, or the other way round, by checkpoint key.
    quant_values: HashMap<String, Vec<u8>>,
    quant_scales: HashMap<String, Vec<f32>>,
    /// 8-bit Linear weights waiting for the rest of their parameter (q, k and v).
    matrices: HashMap<String, QuantMatrix>,
    /// 8-bit Linear weights on the device, by the first checkpoint key of their parameter.
    quant_loaded: HashMap<String, Tensor<2>>,
    /// The same kept on the host for their layer ([`QuantMatrix::stays_on_host`]).
    quant_host: HashMap<String, QuantMatrix>,
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

/// On a GPU, a float tensor of more values than this is sent in pieces of this many (4 MB)
/// as it arrives, instead of gathered on the host first: the token embedding (101 MB in B/32)
/// would otherwise raise the page's wasm heap, which never shrinks, by its size.
const PIECE: usize = 1 << 20;

/// The bytes of the tensor being received.
#[derive(Default)]
enum Pending {
    #[default]
    None,
    /// Kept as they come: 8-bit values and scales, decoded once complete.
    Raw(Vec<u8>),
    /// An f32 tensor the model takes as stored, received straight into its final buffer, so
    /// that the largest tensors (the token embedding, 101 MB in B/32) are never copied.
    F32 { values: Vec<f32>, filled: usize },
    /// Any other float parameter, decoded as it comes (f16 and bf16 widened, a Linear weight
    /// transposed from the checkpoint's `[rows, cols]`) into its final buffer: no copy of the
    /// stored bytes is kept, and none is left behind as a hole in the heap.
    Decoded { values: Vec<f32>, next: usize, decoder: Decoder, transpose: Option<Transpose> },
    /// A large float tensor for a GPU, written into its place on the device [`PIECE`] values
    /// at a time.
    Pieces(Box<Pieces>),
}

impl Pending {
    /// How `entry` is received; `in_pieces`: it may be sent in pieces if large.
    fn for_entry(entry: &Entry, transpose: bool, in_pieces: bool, device: &Device) -> Self {
        let bytes = entry.end - entry.start;
        let float = matches!(entry.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16);
        if entry.role != Role::Param || !float {
            return Self::Raw(Vec::with_capacity(bytes));
        }
        let numel = bytes / (entry.dtype.bitsize() / 8);
        let decoder = Decoder { dtype: entry.dtype, carry: [0; 4], carried: 0 };
        if in_pieces && !transpose && numel > PIECE {
            let whole = Some(Tensor::zeros([numel], device));
            Self::Pieces(Box::new(Pieces { whole, piece: Vec::with_capacity(PIECE), sent: 0, decoder }))
        } else if entry.dtype == Dtype::F32 && !transpose && cfg!(target_endian = "little") {
            Self::F32 { values: vec![0f32; numel], filled: 0 }
        } else {
            let transpose =
                (transpose && entry.shape.len() == 2).then(|| Transpose::new(entry.shape[0], entry.shape[1]));
            Self::Decoded { values: vec![0f32; numel], next: 0, decoder, transpose }
        }
    }

    fn extend(&mut self, bytes: &[u8], device: &Device) -> Result<(), Error> {
        match self {
            Self::None => {}
            Self::Raw(raw) => raw.extend_from_slice(bytes),
            Self::F32 { values, filled } => {
                let dst: &mut [u8] = bytemuck::cast_slice_mut(values.as_mut_slice());
                dst[*filled..*filled + bytes.len()].copy_from_slice(bytes);
                *filled += bytes.len();
            }
            Self::Decoded { values, next, decoder, transpose: None } => decoder.decode(bytes, |v| {
                values[*next] = v;
                *next += 1;
            }),
            Self::Decoded { values, decoder, transpose: Some(t), .. } => decoder.decode(bytes, |v| t.push(values, v)),
            Self::Pieces(pieces) => pieces.extend(bytes, device)?,
        }
        Ok(())
    }
}

/// A large tensor on its way to a GPU (see [`PIECE`]).
struct Pieces {
    /// On the device, filled up to `sent`; an `Option` only so that it can be taken (not
    /// cloned) to write into, which keeps each write in place.
    whole: Option<Tensor<1>>,
    piece: Vec<f32>,
    sent: usize,
    decoder: Decoder,
}

impl Pieces {
    fn extend(&mut self, mut bytes: &[u8], device: &Device) -> Result<(), Error> {
        while !bytes.is_empty() {
            // No more bytes than fill the piece, so that it is sent before it grows.
            let room = (PIECE - self.piece.len()) * (self.decoder.dtype.bitsize() / 8) - self.decoder.carried;
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            let piece = &mut self.piece;
            self.decoder.decode(now, |v| piece.push(v));
            bytes = later;
            if self.piece.len() == PIECE {
                self.send(device)?;
            }
        }
        Ok(())
    }

    /// The piece into its place on the device, its host buffer emptied for the next.
    fn send(&mut self, device: &Device) -> Result<(), Error> {
        let n = self.piece.len();
        let values = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        let part = Tensor::<1>::from_data(TensorData::new(values, [n]), device);
        let at = self.sent;
        self.whole = self.whole.take().map(|w| w.slice_assign(at..at + n, part));
        self.sent += n;
        flush(device)
    }

    /// The tensor, once every byte is in.
    fn finish(mut self, device: &Device) -> Result<Tensor<1>, Error> {
        if !self.piece.is_empty() {
            self.send(device)?;
        }
        Ok(self.whole.expect("set until finished"))
    }
}

/// A stored `[rows, cols]` matrix arriving value by value, written transposed: a few rows
/// are gathered, then written out a column at a time, so that each write fills a run of
/// consecutive values instead of touching one value per cache line.
struct Transpose {
    rows: usize,
    cols: usize,
    /// The first row of `block`.
    row: usize,
    block: Vec<f32>,
}

/// Rows gathered before they are written out transposed.
const BLOCK_ROWS: usize = 16;

impl Transpose {
    fn new(rows: usize, cols: usize) -> Self {
        Self { rows, cols, row: 0, block: Vec::with_capacity(BLOCK_ROWS.min(rows) * cols) }
    }

    /// The next value, into `values` (burn's `[cols, rows]`) once its block is complete.
    #[inline]
    fn push(&mut self, values: &mut [f32], v: f32) {
        self.block.push(v);
        let n = BLOCK_ROWS.min(self.rows - self.row);
        if self.block.len() == n * self.cols {
            for c in 0..self.cols {
                let out = &mut values[c * self.rows + self.row..][..n];
                for (r, o) in out.iter_mut().enumerate() {
                    *o = self.block[r * self.cols + c];
                }
            }
            self.row += n;
            self.block.clear();
        }
    }
}

/// Float values decoded from bytes that arrive in pieces of any length: a value split
/// between two pieces waits in `carry` for its other bytes.
struct Decoder {
    dtype: Dtype,
    carry: [u8; 4],
    carried: usize,
}

impl Decoder {
    #[inline]
    fn decode(&mut self, mut bytes: &[u8], mut emit: impl FnMut(f32)) {
        let size = self.dtype.bitsize() / 8;
        let dtype = self.dtype;
        let value = |b: &[u8]| match dtype {
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            _ => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        };
        if self.carried > 0 {
            let take = (size - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < size {
                return;
            }
            emit(value(&self.carry[..size]));
            self.carried = 0;
        }
        let whole = bytes.len() / size * size;
        // The type chosen once, not per value.
        let values = &bytes[..whole];
        match dtype {
            Dtype::F32 => values.chunks_exact(4).for_each(|b| emit(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            Dtype::F16 => values.chunks_exact(2).for_each(|b| emit(half::f16::from_le_bytes([b[0], b[1]]).to_f32())),
            _ => values.chunks_exact(2).for_each(|b| emit(half::bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        }
        let rest = &bytes[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }
}

/// Have the device take the tensors sent so far. On a GPU, cubecl queues each upload with
/// its host bytes until it submits, after as many as 128 tasks (`TASKS_PER_SUBMIT`):
/// loading, that held a hundred tensors' bytes at once (ViT-B/32: 180 MB more in the page's
/// wasm heap, which never shrinks). On the CPU there is nothing to do.
fn flush(device: &Device) -> Result<(), Error> {
    device.flush().map_err(|e| Error::Device(format!("sending the weights to the device failed: {e:?}")))
}

/// A tensor of the file, where its bytes are.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
    role: Role,
}

/// What a tensor of the file is to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// Of no use to it (such as `position_ids`): skipped.
    Skip,
    /// A parameter, or one of the parameter's parts.
    Param,
    /// The scales of this 8-bit parameter.
    Scales(String),
}

impl WeightStream {
    /// Start building the model `config` describes on `device`.
    pub fn new(config: &ClipConfig, device: &Device) -> Result<Self, Error> {
        config.validate()?;
        let skeleton = config.init(device);
        let mut planner = Planner { at: KeyPath::default(), wanted: HashMap::new(), groups: HashMap::new() };
        skeleton.visit(&mut planner);
        Ok(Self {
            skeleton,
            wanted: planner.wanted,
            state: State::Length(Vec::with_capacity(8)),
            received: 0,
            loaded: HashMap::new(),
            groups: planner.groups,
            sides: HashMap::new(),
            quant_values: HashMap::new(),
            quant_scales: HashMap::new(),
            matrices: HashMap::new(),
            quant_loaded: HashMap::new(),
            quant_host: HashMap::new(),
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
                    if entry.role != Role::Skip {
                        if *at == entry.start {
                            let transpose = self.wanted.get(&entry.name).is_some_and(|s| s.transpose);
                            // q, k and v are assembled on the host (see `put`).
                            let part = self.groups.get(&entry.name).is_some_and(|g| g.len() > 1);
                            let gpu = self.device != Device::flex();
                            *pending = Pending::for_entry(entry, transpose, gpu && !part, &self.device);
                        }
                        pending.extend(&bytes[..take], &self.device)?;
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
        let mut filler = Filler {
            at: KeyPath::default(),
            loaded: &mut self.loaded,
            quant_loaded: &mut self.quant_loaded,
            quant_host: &mut self.quant_host,
            host: HostWeights::default(),
            device: self.device.clone(),
            error: None,
        };
        let mut model = self.skeleton.map(&mut filler);
        match filler.error {
            Some(e) => Err(e),
            None => {
                model.pack_weights(&mut filler.host);
                Ok(model)
            }
        }
    }

    /// Parse the header, check it against the model, and list the tensors in file order.
    fn plan(&self, json: &[u8]) -> Result<Vec<Entry>, Error> {
        let metadata: safetensors::tensor::Metadata = serde_json::from_slice(json)
            .map_err(|e| Error::WeightsFile(format!("the header is not valid safetensors JSON ({e})")))?;
        let mut tensors: Vec<(usize, Entry)> = Vec::new();
        // Scale key → the 8-bit tensor it scales.
        let mut scale_roles: HashMap<String, String> = HashMap::new();
        for (name, info) in metadata.tensors() {
            let (start, end) = info.data_offsets;
            let numel: Option<usize> = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let bytes = numel.and_then(|n| n.checked_mul(info.dtype.bitsize())).map(|b| b / 8);
            if end < start || bytes != Some(end - start) {
                return Err(Error::WeightsFile(format!("tensor {name} has inconsistent offsets (corrupt header)")));
            }
            let role = match self.wanted.get(&name) {
                Some(stored) => {
                    stored.check(info.dtype, &info.shape)?;
                    if info.dtype == Dtype::I8 {
                        let key = crate::quant::scale_key(&name);
                        let scales = metadata.info(&key).ok_or_else(|| Error::MissingTensor(key.clone()))?;
                        stored.check_scales(scales.dtype, &scales.shape)?;
                        scale_roles.insert(key, name.clone());
                    }
                    Role::Param
                }
                None => Role::Skip,
            };
            tensors.push((start, Entry { name, dtype: info.dtype, shape: info.shape.clone(), start, end, role }));
        }
        for (_, e) in &mut tensors {
            if let Some(of) = scale_roles.remove(&e.name) {
                e.role = Role::Scales(of);
            }
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
        loop {
            let State::Data { tensors, next, at, pending } = &mut self.state else { return Ok(()) };
            let Some(entry) = tensors.get(*next) else { return Ok(()) };
            if *at != entry.end {
                return Ok(());
            }
            let (name, dtype, shape, role) = (entry.name.clone(), entry.dtype, entry.shape.clone(), entry.role.clone());
            let taken = std::mem::take(pending);
            *next += 1;
            let raw = |data: Vec<u8>| RawTensor { dtype, shape: shape.clone(), data: data.into() };
            let bytes = |taken: Pending| match taken {
                Pending::F32 { values, .. } | Pending::Decoded { values, .. } => bytemuck::cast_slice(&values).to_vec(),
                Pending::Raw(data) => data,
                // An empty tensor: no byte of it ever arrived; float parameters only.
                Pending::None | Pending::Pieces(_) => Vec::new(),
            };
            match role {
                Role::Skip => {}
                Role::Scales(of) => {
                    let scales = decode_f32(&name, &raw(bytes(taken)))?;
                    self.quant_scales.insert(of.clone(), scales);
                    self.take_quantized(of)?;
                }
                Role::Param if dtype == Dtype::I8 => {
                    self.quant_values.insert(name.clone(), bytes(taken));
                    self.take_quantized(name)?;
                }
                Role::Param => {
                    if let Pending::Pieces(pieces) = taken {
                        self.loaded.insert(name, pieces.finish(&self.device)?);
                        continue;
                    }
                    let values = match taken {
                        Pending::F32 { values, .. } | Pending::Decoded { values, .. } => values,
                        taken => self.wanted[&name].values(&raw(bytes(taken)))?,
                    };
                    self.put(name, values)?;
                }
            }
        }
    }

    /// A tensor's f32 values, to the device; a part of q, k and v waits on the host for the
    /// others, beside them in one buffer ([`SideBySide`]), which goes to the device whole,
    /// under the first part's key.
    fn put(&mut self, name: String, values: Vec<f32>) -> Result<(), Error> {
        let (name, values) = match self.groups.get(&name).filter(|g| g.len() > 1) {
            Some(group) => {
                let (first, parts) = (group[0].clone(), group.len());
                let index = group.iter().position(|k| *k == name).expect("a part of its group");
                let cols = self.wanted[&name].cols();
                let side =
                    self.sides.entry(first.clone()).or_insert_with(|| SideBySide::new(parts, values.len(), cols));
                side.put(index, &values);
                drop(values);
                if !side.is_full() {
                    return Ok(());
                }
                (first.clone(), self.sides.remove(&first).expect("just filled").into_values())
            }
            None => (name, values),
        };
        let n = values.len();
        self.loaded.insert(name, Tensor::<1>::from_data(TensorData::new(values, [n]), &self.device));
        flush(&self.device)
    }

    /// Once an 8-bit tensor and its scales are both in: widened to the device, or kept as a
    /// matrix until the rest of its parameter is in, then to the device 8-bit.
    fn take_quantized(&mut self, name: String) -> Result<(), Error> {
        if !(self.quant_values.contains_key(&name) && self.quant_scales.contains_key(&name)) {
            return Ok(());
        }
        let (Some(data), Some(scales)) = (self.quant_values.remove(&name), self.quant_scales.remove(&name)) else {
            return Ok(());
        };
        let stored = &self.wanted[&name];
        let raw = RawTensor { dtype: Dtype::I8, shape: stored.shape.clone(), data: data.into() };
        match stored.quantized(raw, scales, &self.device)? {
            Quantized::Values(values) => self.put(name, values)?,
            Quantized::Matrix(matrix) => {
                self.matrices.insert(name.clone(), matrix);
                let group = self.groups.get(&name).cloned().unwrap_or_else(|| vec![name]);
                if group.iter().all(|k| self.matrices.contains_key(k)) {
                    let parts = group.iter().filter_map(|k| self.matrices.remove(k)).collect();
                    let matrix = QuantMatrix::stack(parts);
                    if QuantMatrix::stays_on_host(&self.device) {
                        self.quant_host.insert(group[0].clone(), matrix);
                    } else {
                        self.quant_loaded.insert(group[0].clone(), matrix.to_device(&self.device));
                        flush(&self.device)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Records how each parameter is stored.
struct Planner {
    at: KeyPath,
    wanted: HashMap<String, Stored>,
    groups: HashMap<String, Vec<String>>,
}

impl ModuleVisitor for Planner {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let parts = self.at.stored(&param.lazy_shape().dims::<D>());
        let names: Vec<String> = parts.iter().map(|(s, _)| s.name.clone()).collect();
        for (stored, _) in parts {
            self.groups.insert(stored.name.clone(), names.clone());
            self.wanted.insert(stored.name.clone(), stored);
        }
    }
}

/// Puts the loaded tensors in place, in their shapes.
struct Filler<'a> {
    at: KeyPath,
    loaded: &'a mut HashMap<String, Tensor<1>>,
    quant_loaded: &'a mut HashMap<String, Tensor<2>>,
    quant_host: &'a mut HashMap<String, QuantMatrix>,
    host: HostWeights,
    device: Device,
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
        let stored = self.at.stored(&expected);
        if let Some(matrix) = stored.first().and_then(|(s, _)| self.quant_loaded.remove(&s.name)) {
            // An 8-bit Linear weight: rank 2 whatever D says.
            return Param::initialized(param.id, Tensor::from_dispatch(matrix.into_dispatch()));
        }
        if let Some(matrix) = stored.first().and_then(|(s, _)| self.quant_host.remove(&s.name)) {
            return held(param, expected, matrix, &mut self.host, &self.device);
        }
        // One tensor, or q, k and v already side by side (under the first's key).
        let Some((first, _)) = stored.into_iter().next() else { return param };
        match self.loaded.remove(&first.name) {
            Some(flat) => Param::initialized(param.id, flat.reshape::<D, _>(expected)),
            None => {
                self.error = Some(Error::MissingTensor(first.name));
                param
            }
        }
    }
}
