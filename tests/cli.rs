//! The command-line contract: JSON shapes, numbers equal to transformers, and one-line errors
//! with a non-zero exit for every kind of bad input.

mod common;

use std::process::{Command, Output};

use common::{Scratch, assert_close, fixtures, reference};
use serde_json::Value;

fn webclip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webclip")).args(args).current_dir(fixtures()).output().unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let out = webclip(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "webclip {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not one JSON document ({e})"))
}

/// Exit non-zero with exactly one line on stderr containing `needle`, and no panic.
fn fails_with(args: &[&str], needle: &str) {
    let out = webclip(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "webclip {args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "webclip {args:?}: not one line:\n{stderr}");
    assert!(stderr.starts_with("webclip: error: "), "{stderr}");
    assert!(stderr.contains(needle), "webclip {args:?}: {stderr:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout should be empty on error");
}

#[test]
fn classify_json_matches_transformers() {
    for model in common::MODELS {
        let r = reference(model);
        let mut args = vec!["classify", "--model", model, "--json"];
        for l in &r.labels {
            args.extend(["--label", l.as_str()]);
        }
        args.extend(r.images.iter().map(|i| i.path.as_str()));
        let out = ok_json(&args);
        let out = out.as_array().unwrap();
        assert_eq!(out.len(), r.images.len());
        for (o, img) in out.iter().zip(&r.images) {
            assert_eq!(o["image"], img.path.as_str());
            let preds = o["predictions"].as_array().unwrap();
            assert_eq!(preds.len(), r.labels.len());
            let mut probs = vec![f32::NAN; r.labels.len()];
            let mut logits = vec![f32::NAN; r.labels.len()];
            for p in preds {
                let i = r.labels.iter().position(|l| l == p["label"].as_str().unwrap()).unwrap();
                probs[i] = p["probability"].as_f64().unwrap() as f32;
                logits[i] = p["logit"].as_f64().unwrap() as f32;
            }
            assert_close(&format!("{model} {} logits", img.path), &logits, &img.logits, 1e-4);
            assert_close(&format!("{model} {} probabilities", img.path), &probs, &img.probs, 5e-5);
            let sorted: Vec<f64> = preds.iter().map(|p| p["probability"].as_f64().unwrap()).collect();
            assert!(sorted.windows(2).all(|w| w[0] >= w[1]), "sorted by probability");
        }
    }
}

#[test]
fn classify_ensemble_labels_file_top_k_and_verbatim_template() {
    let model = "tiny-gelu";
    let r = reference(model);
    let dir = Scratch::new("cli-labels");
    let labels = dir.path("labels.txt");
    std::fs::write(&labels, format!("\n{}\n\n", r.labels.join("\n  "))).unwrap();
    let labels = labels.to_str().unwrap();
    let img = &r.images[1];

    let mut args = vec!["classify", "--model", model, "--json", "--labels", labels, "--top-k", "3"];
    for t in &r.templates {
        args.extend(["--template", t.as_str()]);
    }
    args.push(img.path.as_str());
    let out = ok_json(&args);
    let preds = out[0]["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 3);
    let mut want: Vec<(f32, &str)> =
        img.ensemble_probs.iter().copied().zip(r.labels.iter().map(String::as_str)).collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (p, (prob, label)) in preds.iter().zip(&want) {
        assert_eq!(p["label"], *label);
        assert!((p["probability"].as_f64().unwrap() as f32 - prob).abs() < 5e-5);
    }

    // "{}" uses the labels verbatim: the full prompts give the single-template reference.
    let mut args = vec!["classify", "--model", model, "--json", "--template", "{}"];
    for t in &r.texts {
        args.extend(["--label", t.as_str()]);
    }
    args.push(img.path.as_str());
    let out = ok_json(&args);
    let top = &out[0]["predictions"][0];
    let best = img.probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(top["label"], r.texts[best].as_str());
    assert!((top["probability"].as_f64().unwrap() as f32 - img.probs[best]).abs() < 5e-5);
}

#[test]
fn classify_text_output() {
    let out =
        webclip(&["classify", "--model", "tiny-quickgelu", "--label", "cat", "--label", "dog", "images/chelsea.png"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("images/chelsea.png\n"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains('%')).count(), 2);
}

#[test]
fn embed_json_matches_transformers() {
    let model = "tiny-quickgelu";
    let r = reference(model);
    let out = ok_json(&[
        "embed",
        "--model",
        model,
        "--json",
        "--image",
        &r.images[0].path,
        "--text",
        &r.texts[0],
        "--image",
        &r.images[2].path,
    ]);
    let out = out.as_array().unwrap();
    let vec = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<_>>();
    assert_eq!(out[0]["input"], r.images[0].path.as_str());
    assert_close("image 0", &vec(&out[0]["embedding"]), &r.images[0].image_embeds, 1e-5);
    assert_eq!(out[1]["input"], r.images[2].path.as_str());
    assert_close("image 2", &vec(&out[1]["embedding"]), &r.images[2].image_embeds, 1e-5);
    assert_eq!(out[2]["input"], r.texts[0].as_str());
    assert_close("text 0", &vec(&out[2]["embedding"]), &r.text_embeds[0], 1e-5);
}

/// `--exif-orientation` turns tagged photos upright (rotations and a flip, JPEG and PNG) and
/// then equals transformers on Pillow's `exif_transpose`d image; without it, transformers on
/// the file as it is.
#[test]
fn exif_orientation_flag_matches_transformers() {
    for model in common::MODELS {
        let r = reference(model);
        for e in &r.exif {
            for (flag, want) in [(false, &e.raw), (true, &e.upright)] {
                let mut args = vec!["classify", "--model", model, "--json", e.path.as_str()];
                for l in &r.labels {
                    args.extend(["--label", l.as_str()]);
                }
                if flag {
                    args.push("--exif-orientation");
                }
                let out = ok_json(&args);
                let preds = out[0]["predictions"].as_array().unwrap();
                let logit =
                    |label: &str| preds.iter().find(|p| p["label"] == label).unwrap()["logit"].as_f64().unwrap() as f32;
                let got: Vec<f32> = r.labels.iter().map(|l| logit(l)).collect();
                assert_close(&format!("{model} {} upright={flag}", e.path), &got, &want.logits, 1e-4);
            }
        }
    }
}

#[test]
fn tokenize_json_matches_transformers() {
    #[derive(serde::Deserialize)]
    struct Row {
        text: String,
        input_ids: Vec<u32>,
        attention_mask: Vec<u32>,
    }
    let rows: Vec<Row> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference/tokens.json")).unwrap()).unwrap();
    let mut args = vec!["tokenize", "--json"];
    args.extend(rows.iter().take(12).map(|r| r.text.as_str()));
    let out = ok_json(&args);
    for (o, r) in out.as_array().unwrap().iter().zip(&rows) {
        assert_eq!(o["text"], r.text.as_str());
        assert_eq!(o["input_ids"], serde_json::json!(r.input_ids));
        assert_eq!(o["attention_mask"], serde_json::json!(r.attention_mask));
    }
}

/// A directory holding only pytorch_model.bin (as openai/clip-vit-base-patch32 at main) gives
/// the numbers the safetensors directory gives.
#[test]
fn pytorch_bin_directory_classifies_the_same() {
    for model in common::MODELS {
        let r = reference(model);
        let bin_dir = format!("{model}-bin");
        let run = |dir: &str| {
            let mut args = vec!["classify", "--model", dir, "--json"];
            for l in &r.labels {
                args.extend(["--label", l.as_str()]);
            }
            args.extend(r.images.iter().map(|i| i.path.as_str()));
            ok_json(&args)
        };
        let (bin, st) = (run(&bin_dir), run(model));
        assert_eq!(bin, st, "{bin_dir}: not the numbers of {model}");
        for (o, img) in bin.as_array().unwrap().iter().zip(&r.images) {
            let mut logits = vec![f32::NAN; r.labels.len()];
            for p in o["predictions"].as_array().unwrap() {
                let i = r.labels.iter().position(|l| l == p["label"].as_str().unwrap()).unwrap();
                logits[i] = p["logit"].as_f64().unwrap() as f32;
            }
            assert_close(&format!("{bin_dir} {} logits", img.path), &logits, &img.logits, 1e-4);
        }
    }
    // convert: .bin in, safetensors out, loadable in place of the .bin.
    let dir = Scratch::new("cli-convert-bin");
    for f in ["config.json", "preprocessor_config.json"] {
        std::fs::copy(fixtures().join("tiny-gelu-bin").join(f), dir.path(f)).unwrap();
    }
    let out = webclip(&[
        "convert",
        "--dtype",
        "f16",
        "tiny-gelu-bin/pytorch_model.bin",
        dir.path("model.safetensors").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = reference("tiny-gelu");
    let out = ok_json(&[
        "classify",
        "--model",
        dir.0.to_str().unwrap(),
        "--json",
        "--label",
        "cat",
        "--label",
        "dog",
        &r.images[0].path,
    ]);
    assert_eq!(out.as_array().unwrap()[0]["predictions"].as_array().unwrap().len(), 2);
}

/// `bench`: every stage timed, as medians of the runs asked for, in one JSON document.
#[test]
fn bench_reports_every_stage() {
    let out =
        ok_json(&["bench", "--model", "tiny-quickgelu", "--runs", "3", "--batch", "2", "--json", "images/chelsea.png"]);
    assert_eq!((out["batch"].as_u64(), out["runs"].as_u64(), out["prompts"].as_u64()), (Some(2), Some(3), Some(8)));
    assert!(out["load_ms"].as_f64().unwrap() > 0.0);
    for stage in ["decode", "preprocess", "vision", "text", "scoring"] {
        let (median, min) = (out["stages"][stage]["median_ms"].as_f64(), out["stages"][stage]["min_ms"].as_f64());
        assert!(matches!((median, min), (Some(m), Some(b)) if m > 0.0 && b > 0.0 && b <= m), "{stage}: {out}");
    }
    fails_with(&["bench", "--model", "tiny-quickgelu", "--runs", "0", "images/chelsea.png"], "at least 1");
    fails_with(&["bench", "--model", "tiny-quickgelu", "images/odd/not_an_image.png"], "not_an_image.png");
}

#[test]
fn convert_round_trip() {
    let dir = Scratch::model_copy("cli-convert", "tiny-quickgelu");
    let src = fixtures().join("tiny-quickgelu/model.safetensors");
    let f32_path = dir.path("f32.safetensors");
    let out = webclip(&["convert", "--dtype", "f32", src.to_str().unwrap(), f32_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let back = dir.path("model.safetensors");
    let out = webclip(&["convert", "--dtype", "f16", f32_path.to_str().unwrap(), back.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap(), "f16 → f32 → f16 is the identity");
}

/// `convert --dtype q8` next to the f32 weights, then `--weights` picks the file: the 8-bit
/// one gives transformers' logits on its values, the default still the f16 file's.
#[test]
fn convert_q8_and_choose_the_weights_file() {
    let dir = Scratch::model_copy("cli-q8", "tiny-quickgelu");
    let q8 = dir.path("model.q8.safetensors");
    let out =
        webclip(&["convert", "--dtype", "q8", dir.path("model.safetensors").to_str().unwrap(), q8.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = dir.0.to_str().unwrap();
    let first_logits = |extra: &[&str], reference_of: &str| {
        let r = reference(reference_of);
        let mut args = vec!["classify", "--model", model, "--json"];
        args.extend_from_slice(extra);
        for l in &r.labels {
            args.extend(["--label", l.as_str()]);
        }
        args.push(r.images[0].path.as_str());
        let out = ok_json(&args);
        let mut logits = vec![f32::NAN; r.labels.len()];
        for p in out[0]["predictions"].as_array().unwrap() {
            let i = r.labels.iter().position(|l| l == p["label"].as_str().unwrap()).unwrap();
            logits[i] = p["logit"].as_f64().unwrap() as f32;
        }
        assert_close(&format!("{extra:?}"), &logits, &r.images[0].logits, 1e-4);
    };
    first_logits(&["--weights", "model.q8.safetensors"], "tiny-quickgelu-q8");
    first_logits(&[], "tiny-quickgelu");
    fails_with(
        &["classify", "--model", model, "--weights", "nope.safetensors", "--label", "cat", "images/chelsea.png"],
        "nope.safetensors: not found",
    );
    fails_with(&["convert", "--dtype", "q8", q8.to_str().unwrap(), "/tmp/x.safetensors"], "already 8-bit");
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    let m = "tiny-quickgelu";
    fails_with(&["classify", "--model", m, "images/chelsea.png"], "no labels");
    fails_with(&["classify", "--model", m, "--label", "  ", "images/chelsea.png"], "no labels");
    fails_with(&["classify", "--model", m, "--label", "cat"], "IMAGE");
    fails_with(&["classify", "--model", m, "--label", "cat", "images/nope.png"], "images/nope.png");
    fails_with(
        &["classify", "--model", m, "--label", "cat", "images/odd/not_an_image.png"],
        "unrecognised image format",
    );
    fails_with(&["classify", "--model", m, "--label", "cat", "images/odd/truncated.png"], "truncated.png");
    fails_with(&["classify", "--model", m, "--label", "cat", "--template", "no slot", "images/chelsea.png"], "no {}");
    fails_with(&["classify", "--model", m, "--label", "cat", "--top-k", "0", "images/chelsea.png"], "--top-k");
    fails_with(&["classify", "--model", m, "--label", "cat", "--top-k", "x", "images/chelsea.png"], "invalid value");
    fails_with(
        &["classify", "--model", m, "--label", "cat", "--backend", "tpu", "images/chelsea.png"],
        "unknown backend",
    );
    fails_with(&["classify", "--model", "nowhere", "--label", "cat", "images/chelsea.png"], "config.json");
    fails_with(
        &["classify", "--model", m, "--label", "cat", "--labels", "missing.txt", "images/chelsea.png"],
        "missing.txt",
    );
    fails_with(&["embed", "--model", m], "nothing to embed");
    fails_with(&["tokenize"], "TEXT");
    fails_with(&["convert", "--dtype", "f8", "a", "b"], "unknown dtype");
    fails_with(&["convert", "--dtype", "f16", "images/chelsea.png", "/tmp/x.safetensors"], "invalid weights file");
    fails_with(&["frobnicate"], "unrecognized subcommand");
    fails_with(&["classify", "--bogus"], "--bogus");

    let dir = Scratch::model_copy("cli-corrupt", m);
    let bytes = std::fs::read(dir.path("model.safetensors")).unwrap();
    std::fs::write(dir.path("model.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    fails_with(
        &["classify", "--model", dir.0.to_str().unwrap(), "--label", "cat", "images/chelsea.png"],
        "truncated or corrupt",
    );
}
