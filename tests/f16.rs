//! f16 on the GPU (wgpu over Vulkan: lavapipe in CI, which has `shader-f16`): the tiny models
//! against transformers' f32 reference, within the bounds f16 allows, with their f16 files on
//! the device as stored. Its own test binary: burn fixes a device's float type once per
//! process, and the other tests need the same device in f32.

mod common;

use burn::tensor::DType;
use common::{MODELS, assert_close, fixtures, reference};
use webclip::{Clip, ComputeDevice, Precision};

/// Bounds against transformers in f32: measured on these models with about 2× headroom
/// (embeddings 8.5e-3, logits 0.47, probabilities 4.2e-2 at most, on lavapipe). They are made
/// sensitive (large activations, logit scale 100), and tiny-gelu's probabilities are not
/// peaked, so a logit error moves them; the real ViT-B/32's much smaller figures are in the
/// README. A broken f16 path misses these by orders of magnitude.
const EMBED_TOL: f32 = 2e-2;
const LOGIT_TOL: f32 = 1.0;
const PROB_TOL: f32 = 0.1;

fn rows(t: burn::tensor::Tensor<2>) -> Vec<Vec<f32>> {
    pollster::block_on(Clip::rows(t)).unwrap()
}

#[test]
fn f16_on_vulkan_stays_within_its_bounds() {
    let mut device = ComputeDevice::wgpu().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    assert_eq!(device.graphics_api.as_deref(), Some("Vulkan"), "{}", device.describe());
    device.use_f16().expect("lavapipe has shader-f16");
    assert_eq!(device.precision, Precision::F16);
    for (dir, model) in [(MODELS[0], MODELS[0]), (MODELS[1], MODELS[1]), ("tiny-quickgelu-q8", "tiny-quickgelu-q8")] {
        let clip = Clip::load_dir(&fixtures().join(dir), &device.device).unwrap();
        let fc1 = clip.model.text_model.encoder.layers[0].mlp.fc1.weight.val().dtype();
        let emb = clip.model.text_model.embeddings.token_embedding.weight.val().dtype();
        assert_eq!(emb, DType::F16, "{dir}: the token embedding is f16 on the device");
        if dir.ends_with("q8") {
            assert!(matches!(fc1, DType::QFloat(_)), "{dir}: fc1 stays 8-bit, not {fc1:?}");
        } else {
            assert_eq!(fc1, DType::F16, "{dir}: fc1 is f16 on the device");
        }

        let r = reference(model);
        let what = |s: &str| format!("{dir} in f16: {s}");
        let pixels: Vec<_> = r
            .images
            .iter()
            .map(|i| clip.prepare_image(&std::fs::read(fixtures().join(&i.path)).unwrap()).unwrap())
            .collect();
        let image_embeds = clip.image_embeddings(&pixels).unwrap();
        let mut worst = [0f32; 4];
        for (got, img) in rows(image_embeds.clone()).iter().zip(&r.images) {
            worst[0] = worst[0].max(assert_close(
                &what(&format!("image_embeds of {}", img.path)),
                got,
                &img.image_embeds,
                EMBED_TOL,
            ));
        }
        for (i, (got, want)) in rows(clip.text_embeddings(&r.texts).unwrap()).iter().zip(&r.text_embeds).enumerate() {
            worst[1] = worst[1].max(assert_close(&what(&format!("text_embeds[{i}]")), got, want, EMBED_TOL));
        }
        let labels = clip.label_set(&r.labels, &r.templates[..1]).unwrap();
        let preds = pollster::block_on(clip.classify(&pixels, &labels)).unwrap();
        for (i, (logits, img)) in rows(clip.logits(image_embeds, &labels)).iter().zip(&r.images).enumerate() {
            worst[2] =
                worst[2].max(assert_close(&what(&format!("logits of {}", img.path)), logits, &img.logits, LOGIT_TOL));
            let mut probs = vec![0f32; r.labels.len()];
            for p in &preds[i] {
                probs[r.labels.iter().position(|l| *l == p.label).unwrap()] = p.probability;
            }
            worst[3] = worst[3].max(assert_close(
                &what(&format!("probabilities of {}", img.path)),
                &probs,
                &img.probs,
                PROB_TOL,
            ));
        }
        println!(
            "{}: max |diff| image embeddings {:.1e}, text embeddings {:.1e}, logits {:.1e}, probabilities {:.1e}",
            what(&device.describe()),
            worst[0],
            worst[1],
            worst[2],
            worst[3]
        );
    }
}

/// f16 is for GPUs: asked of the CPU, a clear error.
#[test]
fn f16_on_the_cpu_is_refused() {
    let e = ComputeDevice::cpu().use_f16().unwrap_err().to_string();
    assert!(e.contains("GPU"), "{e}");
}
