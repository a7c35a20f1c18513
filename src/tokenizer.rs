//! CLIP's byte-level BPE tokenizer, read from a Hugging Face `tokenizer.json`.
//!
//! The `tokenizers` crate does the work; this module fixes CLIP's conventions around it:
//! start/end tokens (from the file's post-processor), truncation to the model's 77 positions
//! keeping the end token, and padding with `<|endoftext|>` as the HF CLIP repos configure it.
//! A built-in `tokenizer.json` (made by `scripts/make_tokenizer.py` from OpenAI's MIT-licensed
//! BPE vocabulary) is used when a model directory has none.

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::Error;
use crate::model::TokenBatch;

/// The `tokenizer.json` built from `bpe_simple_vocab_16e6.txt.gz` (see `scripts/make_tokenizer.py`).
pub const BUILTIN_TOKENIZER_JSON: &[u8] = include_bytes!("tokenizer.json");

/// How to pad a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// To the longest sequence in the batch: what inference needs (same results, less work).
    Longest,
    /// To the maximum length (77), as `padding="max_length"` gives.
    MaxLength,
}

/// Token ids and attention mask for a batch of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    pub tokens: TokenBatch,
    pub attention_mask: Vec<u32>,
}

#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    max_length: usize,
    pad_id: u32,
}

impl ClipTokenizer {
    /// The built-in tokenizer, truncating to `max_length` tokens (77 for every CLIP).
    pub fn builtin(max_length: usize) -> Self {
        Self::from_json(BUILTIN_TOKENIZER_JSON, max_length).expect("the built-in tokenizer.json is valid")
    }

    /// A tokenizer from `tokenizer.json` bytes.
    pub fn from_json(json: &[u8], max_length: usize) -> Result<Self, Error> {
        let mut inner =
            Tokenizer::from_bytes(json).map_err(|e| Error::Tokenizer(format!("invalid tokenizer.json: {e}")))?;
        if max_length < 2 {
            return Err(Error::Tokenizer(format!("max length {max_length} leaves no room for start and end tokens")));
        }
        // HF CLIP repos pad with <|endoftext|> unless the file says otherwise.
        let pad_id = match inner.get_padding() {
            Some(p) => p.pad_id,
            None => inner
                .token_to_id("<|endoftext|>")
                .ok_or_else(|| Error::Tokenizer("tokenizer.json has no <|endoftext|> token".into()))?,
        };
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(Self { inner, max_length, pad_id })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Token ids of one text, with start and end tokens, truncated but not padded.
    pub fn encode_one(&self, text: &str) -> Result<Vec<u32>, Error> {
        let enc = self.inner.encode(text, true).map_err(|e| Error::Tokenizer(format!("{text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Tokenize and pad a batch.
    pub fn encode(&self, texts: &[impl AsRef<str>], padding: Padding) -> Result<Encoding, Error> {
        let rows = texts.iter().map(|t| self.encode_one(t.as_ref())).collect::<Result<Vec<_>, _>>()?;
        let seq_len = match padding {
            Padding::MaxLength => self.max_length,
            Padding::Longest => rows.iter().map(Vec::len).max().unwrap_or(0),
        };
        let mut ids = Vec::with_capacity(rows.len() * seq_len);
        let mut attention_mask = Vec::with_capacity(rows.len() * seq_len);
        for row in &rows {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.pad_id, seq_len - row.len()));
            attention_mask.extend(std::iter::repeat_n(1, row.len()));
            attention_mask.extend(std::iter::repeat_n(0, seq_len - row.len()));
        }
        Ok(Encoding { tokens: TokenBatch { ids, batch: rows.len(), seq_len }, attention_mask })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_openai_ids() {
        let t = ClipTokenizer::builtin(77);
        assert_eq!(t.encode_one("a photo of a cat").unwrap(), [49406, 320, 1125, 539, 320, 2368, 49407]);
    }

    #[test]
    fn truncation_keeps_the_end_token() {
        let t = ClipTokenizer::builtin(77);
        let ids = t.encode_one(&"cat ".repeat(200)).unwrap();
        assert_eq!(ids.len(), 77);
        assert_eq!((ids[0], ids[76]), (49406, 49407));
    }

    #[test]
    fn longest_padding() {
        let t = ClipTokenizer::builtin(77);
        let e = t.encode(&["a cat", "a photo of a dog"], Padding::Longest).unwrap();
        assert_eq!((e.tokens.batch, e.tokens.seq_len), (2, 7));
        assert_eq!(e.tokens.row(0), [49406, 320, 2368, 49407, 49407, 49407, 49407]);
        assert_eq!(&e.attention_mask[..7], [1, 1, 1, 1, 0, 0, 0]);
    }
}
