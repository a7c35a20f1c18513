//! Bad input gets a clear error naming the cause — never a panic: corrupt, truncated or
//! mismatched weights, bad configs, undecodable or oversized images, empty labels.

mod common;

use std::collections::HashMap;

use common::{Scratch, fixtures};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use webclip::weights::{SafetensorsFile, TensorSource, decode_f32};
use webclip::{Clip, ComputeDevice, Error};

const MODEL: &str = "tiny-quickgelu";

fn weights() -> Vec<u8> {
    std::fs::read(fixtures().join(MODEL).join("model.safetensors")).unwrap()
}

type Owned = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

/// The fixture's tensors, owned, to edit and write back.
fn owned_tensors() -> Owned {
    let bytes = weights();
    let file = SafetensorsFile::parse(&bytes).unwrap();
    file.names()
        .into_iter()
        .map(|n| {
            let t = file.tensor(n).unwrap().unwrap();
            (n.to_string(), t.dtype, t.shape.clone(), t.data.to_vec())
        })
        .collect()
}

fn serialize(tensors: &Owned) -> Vec<u8> {
    let views: Vec<_> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()
}

/// Rewrite the fixture weights through `edit`, load them, return the error.
fn load_edited(name: &str, edit: impl FnOnce(&mut Owned)) -> Error {
    let mut tensors = owned_tensors();
    edit(&mut tensors);
    load_bytes(name, &serialize(&tensors))
}

fn load_bytes(name: &str, bytes: &[u8]) -> Error {
    let dir = Scratch::model_copy(name, MODEL);
    std::fs::write(dir.path("model.safetensors"), bytes).unwrap();
    match Clip::load_dir(&dir.0, &ComputeDevice::cpu().device) {
        Ok(_) => panic!("{name}: loaded without error"),
        Err(e) => e,
    }
}

#[test]
fn missing_tensor() {
    let e = load_edited("missing", |t| t.retain(|(n, ..)| n != "vision_model.post_layernorm.weight"));
    assert!(matches!(e, Error::MissingTensor(ref n) if n == "vision_model.post_layernorm.weight"), "{e}");
    assert!(e.to_string().contains("vision_model.post_layernorm.weight"));
}

#[test]
fn wrong_shape_names_tensor_and_shapes() {
    let e = load_edited("shape", |t| {
        let w = t.iter_mut().find(|(n, ..)| n == "text_model.encoder.layers.1.mlp.fc1.weight").unwrap();
        w.2 = vec![32, 64]; // stored [out, in] = [64, 32]; same byte count, transposed shape
    });
    assert_eq!(
        e.to_string(),
        "tensor text_model.encoder.layers.1.mlp.fc1.weight has shape [32, 64], expected [64, 32]"
    );
}

#[test]
fn wrong_dtype() {
    let e = load_edited("dtype", |t| {
        let w = t.iter_mut().find(|(n, ..)| n == "logit_scale").unwrap();
        w.1 = Dtype::I16; // two bytes, like the f16 it replaces
    });
    assert!(matches!(e, Error::Dtype { .. }), "{e}");
    assert!(e.to_string().contains("logit_scale") && e.to_string().contains("I16"), "{e}");
}

#[test]
fn extra_tensors_are_ignored() {
    let dir = Scratch::model_copy("extra", MODEL);
    let mut tensors = owned_tensors();
    let ids: Vec<u8> = (0..77i64).flat_map(|i| i.to_le_bytes()).collect();
    tensors.push(("text_model.embeddings.position_ids".into(), Dtype::I64, vec![1, 77], ids));
    std::fs::write(dir.path("model.safetensors"), serialize(&tensors)).unwrap();
    Clip::load_dir(&dir.0, &ComputeDevice::cpu().device).unwrap();
}

#[test]
fn truncated_and_corrupt_files() {
    let bytes = weights();
    for (name, data, needle) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "shorter or longer than the header says"),
        ("header-only", bytes[..100].to_vec(), "header length is larger than the file"),
        ("tiny", bytes[..5].to_vec(), "too short"),
        ("empty", Vec::new(), "too short"),
        ("garbage", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}".to_vec(), "not valid safetensors JSON"),
        ("png", std::fs::read(fixtures().join("images/chelsea.png")).unwrap(), "invalid weights file"),
    ] {
        let e = load_bytes(name, &data);
        assert!(matches!(e, Error::WeightsFile(_)), "{name}: {e}");
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }
}

#[test]
fn missing_files_and_bad_config() {
    let dir = Scratch::new("no-weights");
    std::fs::copy(fixtures().join(MODEL).join("config.json"), dir.path("config.json")).unwrap();
    let e = Clip::load_dir(&dir.0, &ComputeDevice::cpu().device).err().unwrap();
    assert!(e.to_string().contains("model.safetensors") && e.to_string().contains("pytorch_model.bin"), "{e}");

    let dir = Scratch::model_copy("bad-config", MODEL);
    std::fs::write(dir.path("config.json"), "{\"vision_config\": {\"hidden_size\": \"wide\"}}").unwrap();
    let e = Clip::load_dir(&dir.0, &ComputeDevice::cpu().device).err().unwrap();
    assert!(matches!(e, Error::Config(_)) && e.to_string().contains("config.json"), "{e}");

    // A config that disagrees with the weights is caught at the first mismatched tensor.
    let dir = Scratch::model_copy("config-mismatch", MODEL);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("config.json")).unwrap()).unwrap();
    config["projection_dim"] = 512.into();
    std::fs::write(dir.path("config.json"), config.to_string()).unwrap();
    let e = Clip::load_dir(&dir.0, &ComputeDevice::cpu().device).err().unwrap();
    assert!(e.to_string().contains("expected [512, "), "{e}");
}

/// F32, F16 and BF16 decode to the values torch stored (dtypes.safetensors / dtypes.json).
#[test]
fn dtypes_decode_as_torch_wrote_them() {
    let bytes = std::fs::read(fixtures().join("reference/dtypes.safetensors")).unwrap();
    // Non-finite values are strings in the JSON ("inf", "-inf").
    let json: HashMap<String, Vec<serde_json::Value>> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference/dtypes.json")).unwrap()).unwrap();
    let expected: HashMap<String, Vec<f32>> = json
        .into_iter()
        .map(|(k, v)| {
            let v =
                v.iter().map(|x| x.as_f64().map(|f| f as f32).unwrap_or_else(|| x.as_str().unwrap().parse().unwrap()));
            (k, v.collect())
        })
        .collect();
    let file = SafetensorsFile::parse(&bytes).unwrap();
    for (name, want) in &expected {
        let got = decode_f32(name, &file.tensor(name).unwrap().unwrap()).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.to_bits(), w.to_bits(), "{name}: {g} vs {w}");
        }
    }
    let e = decode_f32("ids.i64", &file.tensor("ids.i64").unwrap().unwrap()).unwrap_err();
    assert!(e.to_string().contains("ids.i64 is stored as I64"), "{e}");
}

#[test]
fn f16_overflow_is_refused_by_convert() {
    let big: Vec<u8> = [1.0f32, 1e6].iter().flat_map(|v| v.to_le_bytes()).collect();
    let file = safetensors::serialize(
        [("w", TensorView::new(Dtype::F32, vec![2], &big).unwrap())],
        None::<HashMap<String, String>>,
    )
    .unwrap();
    let e = webclip::weights::convert(&file, webclip::weights::FloatType::F16).unwrap_err();
    assert!(e.to_string().contains("beyond the range"), "{e}");
    assert!(webclip::weights::convert(&file, webclip::weights::FloatType::BF16).is_ok());
}

#[test]
fn bad_images() {
    use webclip::preprocess::{decode, from_rgba};
    let read = |p: &str| std::fs::read(fixtures().join("images").join(p)).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text", read("odd/not_an_image.png"), "unrecognised image format"),
        ("truncated png", read("odd/truncated.png"), "cannot decode"),
        ("truncated jpeg", read("rocket.jpg")[..30_000].to_vec(), "truncated"),
        ("jpeg header only", read("rocket.jpg")[..200].to_vec(), "JPEG"),
        ("empty", Vec::new(), "unrecognised image format"),
        ("huge", huge_png(100_000, 100_000), "too large"),
    ];
    for (name, bytes, needle) in cases {
        let e = decode(&bytes).err().unwrap_or_else(|| panic!("{name} decoded"));
        assert!(matches!(e, Error::Image(_)) && e.to_string().contains(needle), "{name}: {e}");
    }
    assert!(from_rgba(3, 3, &[0; 35]).is_err());
}

/// A valid PNG header announcing a huge image (no pixel data needed to be refused).
fn huge_png(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&ihdr);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn empty_labels_and_bad_templates() {
    let clip = Clip::load_dir(&fixtures().join(MODEL), &ComputeDevice::cpu().device).unwrap();
    let e = clip.label_set(&["", "  "], &["a photo of a {}."]).err().unwrap();
    assert!(e.to_string().contains("label list is empty"), "{e}");
    let e = clip.label_set(&["cat"], &["a photo"]).err().unwrap();
    assert!(e.to_string().contains("has no {}"), "{e}");
    assert!(clip.image_embeddings(&[]).is_err());
    let none: [&str; 0] = [];
    assert!(clip.text_embeddings(&none).is_err());
}

/// A broken pytorch_model.bin: cut short, garbage after a zip signature, empty of tensors.
#[test]
fn corrupt_pytorch_bin() {
    let bin = std::fs::read(fixtures().join("tiny-quickgelu-bin/pytorch_model.bin")).unwrap();
    let mut garbage = b"PK\x03\x04".to_vec();
    garbage.extend(std::iter::repeat_n(7u8, 1000));
    for (name, bytes) in [("bin-truncated", bin[..bin.len() / 2].to_vec()), ("bin-garbage", garbage)] {
        let dir = Scratch::new(name);
        for f in ["config.json", "preprocessor_config.json"] {
            std::fs::copy(fixtures().join("tiny-quickgelu-bin").join(f), dir.path(f)).unwrap();
        }
        std::fs::write(dir.path("pytorch_model.bin"), bytes).unwrap();
        let e = Clip::load_dir(&dir.0, &ComputeDevice::cpu().device).err().expect(name);
        assert!(matches!(e, Error::WeightsFile(_)), "{name}: {e}");
        assert!(e.to_string().contains("PyTorch"), "{name}: {e}");
    }
    // The same through the bytes path the browser takes.
    let e = webclip::pytorch::PytorchCheckpoint::from_bytes(bin[..bin.len() - 100].to_vec()).err().unwrap();
    assert!(e.to_string().contains("not a readable PyTorch checkpoint"), "{e}");
}

/// Push `bytes` into a streaming load, `chunk` bytes at a time: the error, and how many bytes
/// had been pushed when it came (`None` if it came from `finish`).
fn stream_error(bytes: &[u8], chunk: usize) -> (Error, Option<usize>) {
    let dir = fixtures().join(MODEL);
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let files = webclip::zeroshot::ModelFiles { config_json: &config, preprocessor_json: None, tokenizer_json: None };
    let mut stream = Clip::load_streaming(files, &ComputeDevice::cpu().device).unwrap();
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        if let Err(e) = stream.push(piece) {
            return (e, Some(i * chunk + piece.len()));
        }
    }
    match stream.finish() {
        Ok(_) => panic!("streamed without error"),
        Err(e) => (e, None),
    }
}

/// The streaming loader (the browser's download path) gives the whole-file loader's messages,
/// and gives them as soon as the bytes show the problem: a header that does not fit the
/// model fails before any tensor data has arrived.
#[test]
fn streamed_weights_fail_early_with_the_same_messages() {
    let edited = |edit: fn(&mut Owned)| {
        let mut t = owned_tensors();
        edit(&mut t);
        serialize(&t)
    };
    let header_end = |bytes: &[u8]| 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    type Edit = fn(&mut Owned);
    let cases: [(&str, Edit); 3] = [
        ("missing", |t| t.retain(|(n, ..)| n != "vision_model.post_layernorm.weight")),
        ("shape", |t| {
            t.iter_mut().find(|(n, ..)| n == "text_model.encoder.layers.1.mlp.fc1.weight").unwrap().2 = vec![32, 64]
        }),
        ("dtype", |t| t.iter_mut().find(|(n, ..)| n == "logit_scale").unwrap().1 = Dtype::I16),
    ];
    for (name, edit) in cases {
        let bytes = edited(edit);
        let whole = load_bytes(name, &bytes);
        let (streamed, at) = stream_error(&bytes, 1000);
        assert_eq!(streamed.to_string(), whole.to_string(), "{name}");
        let at = at.unwrap_or(usize::MAX);
        assert!(at < header_end(&bytes) + 1000, "{name}: failed at byte {at}, after the header");
    }

    let bytes = weights();
    for (name, data, needle) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "shorter or longer than the header says"),
        ("longer", [&bytes[..], b"extra"].concat(), "shorter or longer than the header says"),
        ("header-only", bytes[..100].to_vec(), "header length is larger than the file"),
        ("tiny", bytes[..5].to_vec(), "too short"),
        ("empty", Vec::new(), "too short"),
        ("garbage", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}".to_vec(), "not valid safetensors JSON"),
        ("png", std::fs::read(fixtures().join("images/chelsea.png")).unwrap(), "invalid weights file"),
    ] {
        let (e, _) = stream_error(&data, 4096);
        assert!(matches!(e, Error::WeightsFile(_)), "{name}: {e}");
        assert!(e.to_string().contains(needle), "{name}: {e}");
    }

    // Tensors the model does not use (the int64 position_ids of older checkpoints) are skipped.
    let mut t = owned_tensors();
    let ids: Vec<u8> = (0..77i64).flat_map(|i| i.to_le_bytes()).collect();
    t.push(("text_model.embeddings.position_ids".into(), Dtype::I64, vec![1, 77], ids));
    let bytes = serialize(&t);
    let dir = fixtures().join(MODEL);
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let files = webclip::zeroshot::ModelFiles { config_json: &config, preprocessor_json: None, tokenizer_json: None };
    let mut stream = Clip::load_streaming(files, &ComputeDevice::cpu().device).unwrap();
    bytes.chunks(333).for_each(|piece| stream.push(piece).unwrap());
    stream.finish().unwrap();

    // Offsets that leave a gap between two tensors.
    let json = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    let gap = [&(json.len() as u64).to_le_bytes()[..], json.as_bytes(), &[0; 12]].concat();
    let (e, _) = stream_error(&gap, 4096);
    assert!(matches!(e, Error::WeightsFile(_)) && e.to_string().contains("offset for tensor `b`"), "{e}");
}

/// The committed 8-bit file's tensors, owned, to edit and write back.
fn q8_tensors() -> Owned {
    let bytes = std::fs::read(fixtures().join("tiny-quickgelu-q8/model.q8.safetensors")).unwrap();
    let file = SafetensorsFile::parse(&bytes).unwrap();
    file.names()
        .into_iter()
        .map(|n| {
            let t = file.tensor(n).unwrap().unwrap();
            (n.to_string(), t.dtype, t.shape.clone(), t.data.to_vec())
        })
        .collect()
}

/// 8-bit files that do not fit: the same named messages from both loaders, the streaming one
/// before any tensor data for what the header shows.
#[test]
fn q8_files_that_do_not_fit() {
    type Edit = fn(&mut Owned);
    let cases: [(&str, Edit, &str, bool); 5] = [
        (
            "q8-no-scales",
            |t| t.retain(|(n, ..)| n != "text_model.encoder.layers.0.mlp.fc1.weight_scale"),
            "no tensor text_model.encoder.layers.0.mlp.fc1.weight_scale",
            true,
        ),
        (
            "q8-scale-shape",
            |t| {
                t.iter_mut().find(|(n, ..)| n == "text_model.encoder.layers.0.mlp.fc1.weight_scale").unwrap().2 =
                    vec![1, 64]
            },
            "tensor text_model.encoder.layers.0.mlp.fc1.weight_scale has shape [1, 64], expected [64, 1]",
            true,
        ),
        // Width 48 is no multiple of 32: not in the layout.
        (
            "q8-odd-width",
            |t| {
                let w =
                    t.iter_mut().find(|(n, ..)| n == "vision_model.encoder.layers.0.self_attn.q_proj.weight").unwrap();
                w.1 = Dtype::I8;
                w.3.truncate(48 * 48);
            },
            "I8",
            true,
        ),
        (
            "q8-nan-scale",
            |t| {
                let s = t.iter_mut().find(|(n, ..)| n == "text_model.encoder.layers.0.mlp.fc1.weight_scale").unwrap();
                s.3[..2].copy_from_slice(&half::f16::NAN.to_le_bytes());
            },
            "has a scale of NaN",
            false,
        ),
        (
            "q8-scales-as-int",
            |t| {
                t.iter_mut().find(|(n, ..)| n == "text_model.encoder.layers.0.mlp.fc1.weight_scale").unwrap().1 =
                    Dtype::I16
            },
            "I16",
            true,
        ),
    ];
    let header_end = |bytes: &[u8]| 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for (name, edit, needle, early) in cases {
        let mut t = q8_tensors();
        edit(&mut t);
        let bytes = serialize(&t);
        let whole = load_bytes(name, &bytes);
        assert!(whole.to_string().contains(needle), "{name}: {whole}");
        let (streamed, at) = stream_error(&bytes, 1000);
        assert_eq!(streamed.to_string(), whole.to_string(), "{name}");
        if early {
            assert!(at.unwrap_or(usize::MAX) < header_end(&bytes) + 1000, "{name}: failed at byte {at:?}");
        }
    }
}
