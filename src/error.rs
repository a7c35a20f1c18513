//! One error type for the library, with messages a person can act on.

/// Everything that can go wrong between a model directory, an image and a prediction.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config.json` / `preprocessor_config.json` is unreadable or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The safetensors file is not one (truncated, corrupt header, overlapping data, ...).
    #[error("invalid weights file: {0}")]
    WeightsFile(String),
    /// A tensor the model needs is absent.
    #[error("the weights have no tensor {0} (is this a Hugging Face CLIPModel checkpoint?)")]
    MissingTensor(String),
    /// A tensor has a shape that does not fit the configuration.
    #[error("tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape { name: String, found: Vec<usize>, expected: Vec<usize> },
    /// A tensor is stored in a type the loader does not read.
    #[error("tensor {name} is stored as {dtype}; only F32, F16 and BF16 weights are supported")]
    Dtype { name: String, dtype: String },
    /// The tokenizer file is invalid, or tokenizing failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The image could not be decoded or has an unusable size.
    #[error("image: {0}")]
    Image(String),
    /// Invalid zero-shot input: no labels, a template without `{{}}`, ...
    #[error("{0}")]
    Input(String),
    /// The compute device could not be set up or failed while running.
    #[error("device: {0}")]
    Device(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl Error {
    /// A failed file operation, naming the path.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io { path: path.as_ref().display().to_string(), source }
    }
}
