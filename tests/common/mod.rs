//! Shared helpers: fixture paths, reference JSON, comparisons, scratch directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The tiny models `make_fixtures.py` built, and their reference outputs.
pub const MODELS: [&str; 2] = ["tiny-quickgelu", "tiny-gelu"];

#[derive(Deserialize)]
pub struct Reference {
    pub labels: Vec<String>,
    pub templates: Vec<String>,
    pub texts: Vec<String>,
    pub input_ids: Vec<Vec<u32>>,
    pub text_embeds: Vec<Vec<f32>>,
    pub images: Vec<ImageReference>,
    /// Photos with an EXIF orientation tag, read as transformers reads them and turned upright.
    pub exif: Vec<ExifReference>,
}

#[derive(Deserialize)]
pub struct ExifReference {
    pub path: String,
    pub raw: Scores,
    pub upright: Scores,
}

#[derive(Deserialize)]
pub struct Scores {
    pub image_embeds: Vec<f32>,
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
}

#[derive(Deserialize)]
pub struct ImageReference {
    pub path: String,
    pub pixel_values: Vec<f32>,
    pub image_embeds: Vec<f32>,
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    pub ensemble_logits: Vec<f32>,
    pub ensemble_probs: Vec<f32>,
}

pub fn reference(model: &str) -> Reference {
    let path = fixtures().join("reference").join(format!("{model}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Largest absolute difference; panics with `what` when over `tol` or when lengths differ.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (i, diff) = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold((0, 0f32), |m, (i, d)| if d > m.1 || d.is_nan() { (i, d) } else { m });
    assert!(diff <= tol, "{what}: |{} - {}| = {diff:e} at {i} exceeds {tol:e}", got[i], want[i]);
    diff
}

/// A fresh scratch directory under the target dir, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A copy of a fixture model directory to tamper with.
    pub fn model_copy(name: &str, model: &str) -> Self {
        let s = Self::new(name);
        for f in std::fs::read_dir(fixtures().join(model)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, s.0.join(f.file_name().unwrap())).unwrap();
        }
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
