//! Token ids equal to transformers' CLIP tokenizer (`padding="max_length", truncation=True`)
//! on awkward strings, and a model directory's own tokenizer.json taking precedence.

mod common;

use common::{Scratch, fixtures};
use serde::Deserialize;
use webclip::tokenizer::{BUILTIN_TOKENIZER_JSON, ClipTokenizer, Padding};

#[derive(Deserialize)]
struct Row {
    text: String,
    input_ids: Vec<u32>,
    attention_mask: Vec<u32>,
}

fn rows() -> Vec<Row> {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference/tokens.json")).unwrap()).unwrap()
}

#[test]
fn ids_equal_transformers() {
    let rows = rows();
    assert!(rows.len() >= 30, "{} strings", rows.len());
    let t = ClipTokenizer::builtin(77);
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let enc = t.encode(&texts, Padding::MaxLength).unwrap();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(enc.tokens.row(i), r.input_ids.as_slice(), "ids of {:?}", r.text);
        assert_eq!(&enc.attention_mask[i * 77..(i + 1) * 77], r.attention_mask.as_slice(), "mask of {:?}", r.text);
    }
    // The fixtures do exercise truncation and the empty string.
    assert!(rows.iter().any(|r| r.attention_mask.iter().all(|&m| m == 1)));
    assert!(rows.iter().any(|r| r.attention_mask.iter().sum::<u32>() == 2));
}

#[test]
fn a_model_directory_tokenizer_takes_precedence() {
    // Same vocabulary, but without the lowercasing normalizer: "CAT" must now tokenize
    // differently from "cat", which only happens if the directory's file is the one used.
    let mut json: serde_json::Value = serde_json::from_slice(BUILTIN_TOKENIZER_JSON).unwrap();
    let norms = json["normalizer"]["normalizers"].as_array_mut().unwrap();
    norms.retain(|n| n["type"] != "Lowercase");
    let dir = Scratch::model_copy("tokenizer-precedence", "tiny-quickgelu");
    std::fs::write(dir.path("tokenizer.json"), serde_json::to_vec(&json).unwrap()).unwrap();

    let builtin = ClipTokenizer::builtin(77);
    assert_eq!(builtin.encode_one("CAT").unwrap(), builtin.encode_one("cat").unwrap());

    let device = webclip::ComputeDevice::cpu();
    let clip = webclip::Clip::load_dir(&dir.0, &device.device).unwrap();
    assert_ne!(clip.tokenizer.encode_one("CAT").unwrap(), builtin.encode_one("CAT").unwrap());
}

#[test]
fn invalid_tokenizer_json_is_an_error() {
    let e = ClipTokenizer::from_json(b"{not json", 77).err().unwrap();
    assert!(e.to_string().contains("invalid tokenizer.json"), "{e}");
}
