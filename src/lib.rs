//! webclip: OpenAI's CLIP in Rust on burn, with exact parity with Hugging Face transformers.
//!
//! The crate is the model ([`model`]), its weights ([`weights`], [`pytorch`]), tokenizer ([`tokenizer`]),
//! image preprocessing ([`preprocess`]) and zero-shot classification ([`zeroshot`]) — all
//! generic over where burn runs them ([`device`]) and free of any web type. The command-line
//! tool (`src/main.rs`) and the browser build call the same [`zeroshot::Clip`].

#[cfg(not(target_family = "wasm"))]
pub mod bench;
pub mod config;
pub mod device;
mod error;
pub mod kernels;
pub mod model;
pub mod preprocess;
pub mod pytorch;
pub mod quant;
pub mod stream;
pub mod tokenizer;
#[cfg(target_family = "wasm")]
pub mod web;
pub mod weights;
pub mod zeroshot;

pub use config::{ClipConfig, PreprocessConfig};
pub use device::{BackendKind, ComputeDevice, Precision};
pub use error::Error;
pub use zeroshot::{Clip, ClipStream, LabelSet, LabelSetJob, Prediction};
