//! What loading keeps in memory: a `model.safetensors` streamed in (the browser's path) holds
//! no tensor's host bytes longer than it takes to hand them to the device, so the heap (in a
//! browser, the wasm heap, which never shrinks) peaks near one tensor above the model on the
//! CPU, and near one tensor on a GPU, where the model lives in GPU memory.
//!
//! The heap is measured by a counting global allocator, so this test has its binary to itself
//! and runs its two cases one after the other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use safetensors::{Dtype, tensor::TensorView};
use webclip::zeroshot::ModelFiles;
use webclip::{Clip, ComputeDevice};

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(NOW.fetch_add(layout.size(), Relaxed) + layout.size(), Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(NOW.fetch_add(layout.size(), Relaxed) + layout.size(), Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        NOW.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let grow = new_size - layout.size();
            PEAK.fetch_max(NOW.fetch_add(grow, Relaxed) + grow, Relaxed);
        } else {
            NOW.fetch_sub(layout.size() - new_size, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A CLIP whose vision tower has a few wide layers (512 wide, 4 layers: 12.6 MB each, in
/// tensors of up to 4 MB) and whose largest tensor is the token embedding (49408 × 64,
/// 12.6 MB).
const CONFIG: &str = r#"{"projection_dim": 32, "logit_scale_init_value": 2.6592,
  "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 2, "vocab_size": 49408, "max_position_embeddings": 77, "hidden_act": "quick_gelu"},
  "vision_config": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 4,
    "num_attention_heads": 4, "image_size": 32, "patch_size": 8, "hidden_act": "quick_gelu"}}"#;

/// Value `i` of every tensor: small, and not repeating with any power of two.
fn value(i: usize) -> f32 {
    (i % 1009) as f32 * 1e-3
}

/// Every tensor of [`CONFIG`]'s checkpoint, Hugging Face names and shapes, [`value`]s.
fn checkpoint() -> (Vec<u8>, usize) {
    let mut shapes: Vec<(String, Vec<usize>)> = vec![("logit_scale".into(), vec![])];
    let tower = |shapes: &mut Vec<(String, Vec<usize>)>, prefix: &str, d: usize, inner: usize, layers: usize| {
        for i in 0..layers {
            let l = format!("{prefix}.encoder.layers.{i}");
            for p in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                shapes.push((format!("{l}.self_attn.{p}.weight"), vec![d, d]));
                shapes.push((format!("{l}.self_attn.{p}.bias"), vec![d]));
            }
            for n in ["layer_norm1", "layer_norm2"] {
                shapes.push((format!("{l}.{n}.weight"), vec![d]));
                shapes.push((format!("{l}.{n}.bias"), vec![d]));
            }
            shapes.push((format!("{l}.mlp.fc1.weight"), vec![inner, d]));
            shapes.push((format!("{l}.mlp.fc1.bias"), vec![inner]));
            shapes.push((format!("{l}.mlp.fc2.weight"), vec![d, inner]));
            shapes.push((format!("{l}.mlp.fc2.bias"), vec![d]));
        }
    };
    tower(&mut shapes, "text_model", 64, 128, 2);
    tower(&mut shapes, "vision_model", 512, 2048, 4);
    for (name, shape) in [
        ("text_model.embeddings.token_embedding.weight", vec![49408, 64]),
        ("text_model.embeddings.position_embedding.weight", vec![77, 64]),
        ("text_model.final_layer_norm.weight", vec![64]),
        ("text_model.final_layer_norm.bias", vec![64]),
        ("text_projection.weight", vec![32, 64]),
        ("vision_model.embeddings.class_embedding", vec![512]),
        ("vision_model.embeddings.patch_embedding.weight", vec![512, 3, 8, 8]),
        ("vision_model.embeddings.position_embedding.weight", vec![17, 512]),
        ("vision_model.pre_layrnorm.weight", vec![512]),
        ("vision_model.pre_layrnorm.bias", vec![512]),
        ("vision_model.post_layernorm.weight", vec![512]),
        ("vision_model.post_layernorm.bias", vec![512]),
        ("visual_projection.weight", vec![32, 512]),
    ] {
        shapes.push((name.into(), shape));
    }
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .map(|(_, s)| (0..s.iter().product::<usize>()).flat_map(|i| value(i).to_le_bytes()).collect())
        .collect();
    let largest = data.iter().map(Vec::len).max().unwrap();
    let views: Vec<(String, TensorView)> = shapes
        .iter()
        .zip(&data)
        .map(|((n, s), d)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), d).unwrap()))
        .collect();
    (safetensors::serialize(views, None).unwrap(), largest)
}

/// Stream `bytes` into a model on `device` in 64 KB pieces: the heap's peak above where it
/// was when the first byte came, what stays above that once the model is built, the model.
fn stream(device: &ComputeDevice, bytes: &[u8]) -> (usize, usize, Clip) {
    let files = ModelFiles { config_json: CONFIG, preprocessor_json: None, tokenizer_json: None };
    // From after the tokenizer is built (parsing its JSON peaks at about 30 MB).
    let mut load = Clip::load_streaming(files, &device.device).unwrap();
    let base = NOW.load(Relaxed);
    PEAK.store(base, Relaxed);
    for piece in bytes.chunks(64 << 10) {
        load.push(piece).unwrap();
    }
    let clip = load.finish().unwrap();
    let stays = NOW.load(Relaxed).saturating_sub(base);
    let peak = PEAK.load(Relaxed) - base;
    (peak, stays, clip)
}

#[test]
fn streaming_holds_one_tensor_at_a_time() {
    let (bytes, largest) = checkpoint();
    let mb = |n: usize| n as f64 / 1e6;
    // The pieces in flight, q, k and v being assembled, the module tree.
    let slack = 4 << 20;

    // On the CPU the model is in the heap: once, plus the tensor being received.
    let cpu = ComputeDevice::cpu();
    let (peak, stays, _) = stream(&cpu, &bytes);
    println!("cpu: file {:.1} MB, peak {:.1} MB, stays {:.1} MB", mb(bytes.len()), mb(peak), mb(stays));
    assert!(stays <= bytes.len() + slack, "cpu: {:.1} MB stay for a {:.1} MB file", mb(stays), mb(bytes.len()));
    assert!(peak <= bytes.len() + largest + slack, "cpu: peak {:.1} MB", mb(peak));

    // On a GPU each tensor's host bytes go as soon as the device has them (cubecl would queue
    // up to 128 uploads with their bytes), and the largest, the token embedding, goes in
    // pieces as it arrives: the peak is less than that one tensor.
    let gpu = ComputeDevice::wgpu().expect("a wgpu adapter (lavapipe in CI)");
    stream(&gpu, &bytes); // the first load also compiles and allocates what any load needs
    let (peak, stays, clip) = stream(&gpu, &bytes);
    println!("wgpu: file {:.1} MB, peak {:.1} MB, stays {:.1} MB", mb(bytes.len()), mb(peak), mb(stays));
    assert!(peak < largest, "wgpu: peak {:.1} MB, the largest tensor {:.1} MB", mb(peak), mb(largest));
    assert!(stays <= slack, "wgpu: {:.1} MB stay", mb(stays));

    // The token embedding (3.2 M values) was sent in pieces of 1 M: each in its place.
    let weight = clip.model.text_model.embeddings.token_embedding.weight.val();
    let got = weight.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    assert_eq!(got.len(), 49408 * 64);
    let wrong = (0..got.len()).find(|&i| got[i] != value(i));
    assert_eq!(wrong, None, "the token embedding sent in pieces differs at that value");
}
