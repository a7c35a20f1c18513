//! `pytorch_model.bin`: the weights file of hub repositories that predate safetensors (such as
//! `openai/clip-vit-base-patch32` at `main`), read with burn's `pytorch-reader`.
//!
//! The file is what `torch.save(state_dict)` writes: a zip archive (PyTorch ≥ 1.6) holding a
//! pickle of the tensor dictionary and one entry per storage, or the older single-pickle
//! format. Its keys are the very keys of `model.safetensors`, so the same [`TensorSource`]
//! feeds the same loader. Only the pickle is parsed up front: each tensor's bytes are read
//! when the loader asks for it.

use std::borrow::Cow;
use std::collections::HashMap;

use pytorch_reader::{DType, PytorchReader, Tensor};
use safetensors::Dtype;

use crate::Error;
use crate::weights::{RawTensor, TensorSource};

// The reader returns native-endian bytes; the loader decodes little-endian ones.
#[cfg(target_endian = "big")]
compile_error!("webclip reads weights as little-endian bytes");

/// The file format of a weights file, told by its first bytes (not its name, which a user may
/// have changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    Safetensors,
    /// PyTorch's zip archive or its legacy pickle.
    Pytorch,
}

impl WeightsFormat {
    pub fn detect(first_bytes: &[u8]) -> Self {
        match first_bytes {
            // A zip local file header, or a pickle's PROTO opcode (the legacy format).
            [b'P', b'K', 3, 4, ..] | [0x80, 2..=5, ..] => Self::Pytorch,
            _ => Self::Safetensors,
        }
    }
}

/// An opened `pytorch_model.bin`.
pub struct PytorchCheckpoint {
    tensors: HashMap<String, Tensor>,
}

impl PytorchCheckpoint {
    /// Open a checkpoint held in memory (the browser's download).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Error> {
        Self::new(PytorchReader::from_bytes(bytes, None))
    }

    /// Open a checkpoint on disk; tensors are read from the file one at a time.
    #[cfg(not(target_family = "wasm"))]
    pub fn open(path: &std::path::Path) -> Result<Self, Error> {
        Self::new(PytorchReader::new(path))
    }

    fn new(reader: Result<PytorchReader, pytorch_reader::PytorchError>) -> Result<Self, Error> {
        let reader = reader.map_err(|e| Error::WeightsFile(format!("not a readable PyTorch checkpoint ({e})")))?;
        let tensors = reader.into_tensors();
        if tensors.is_empty() {
            return Err(Error::WeightsFile("the PyTorch checkpoint holds no tensors".into()));
        }
        Ok(Self { tensors })
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

fn dtype(d: DType) -> Dtype {
    match d {
        DType::F64 => Dtype::F64,
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U64 => Dtype::U64,
        DType::U32 => Dtype::U32,
        DType::U16 => Dtype::U16,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

impl TensorSource for PytorchCheckpoint {
    fn tensor(&self, name: &str) -> Result<Option<RawTensor<'_>>, Error> {
        let Some(t) = self.tensors.get(name) else { return Ok(None) };
        let data = t.read().map_err(|e| Error::WeightsFile(format!("tensor {name} could not be read ({e})")))?;
        Ok(Some(RawTensor { dtype: dtype(t.dtype()), shape: t.shape().to_vec(), data: Cow::Owned(data) }))
    }
}
