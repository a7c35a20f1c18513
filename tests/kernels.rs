//! webclip's GPU kernels (`src/kernels/`) against burn's own ops on the same device (wgpu
//! over Vulkan: lavapipe here), at shapes that are not multiples of the tiles: one row, odd
//! widths (no vectorized loads), more queries than a workgroup takes, rows that see every
//! key, rows that see only themselves, packed prompts, and queries at a few tokens only.

use std::sync::OnceLock;

use burn::module::Param;
use burn::nn::LayerNormConfig;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use webclip::kernels::{self, Activation, AttentionMask, reference};
use webclip::model::linear::Linear;
use webclip::{ComputeDevice, quant};

/// The one wgpu device of this process (cubecl registers a runtime once per process).
fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let device = ComputeDevice::wgpu().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
            assert_eq!(device.graphics_api.as_deref(), Some("Vulkan"), "{}", device.describe());
            device.device
        })
        .clone()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), device)
}

/// Largest difference, relative to the reference's largest magnitude (at least 1).
fn assert_near(what: &str, got: Tensor<3>, want: Tensor<3>, tol: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (got, want) = (values(got), values(want));
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let (i, diff) = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold((0, 0f32), |m, (i, d)| if d > m.1 || d.is_nan() { (i, d) } else { m });
    assert!(diff <= tol * scale, "{what}: {} vs {} at {i} (difference {diff:e}, scale {scale})", got[i], want[i]);
}

#[test]
fn linear_matches_burn_at_awkward_shapes() {
    let device = device();
    // (rows, tokens, d_in, d_out): one row; odd K and N (scalar loads); N one past a tile; M
    // past a 16-, 32- and 64-row tile; K shorter than a K slice.
    let shapes = [
        (1, 1, 16, 64),
        (1, 1, 7, 3),
        (1, 50, 48, 96),
        (2, 34, 100, 65),
        (1, 67, 32, 130),
        (3, 100, 64, 72),
        (5, 61, 36, 44),
        (1, 300, 20, 8),
    ];
    for (rows, tokens, d_in, d_out) in shapes {
        let mut linear = Linear::new(d_in, d_out, true, &device);
        linear.bias = Some(Param::from_tensor(random([d_out], &device)));
        let x = random([rows, tokens, d_in], &device);
        for act in [Activation::None, Activation::QuickGelu, Activation::Gelu] {
            let got = kernels::linear(x.clone(), &linear, act);
            let want = reference::linear(x.clone(), &linear, act);
            assert_near(&format!("linear {rows}x{tokens}x{d_in}->{d_out} {act:?}"), got, want, 1e-5);
        }
        let residual = random([rows, tokens, d_out], &device);
        let got = kernels::linear_residual(x.clone(), &linear, residual.clone());
        let want = reference::linear(x, &linear, Activation::None) + residual;
        assert_near(&format!("linear {rows}x{tokens}x{d_in}->{d_out} + residual"), got, want, 1e-5);
    }
}

/// The CPU's Linear (rten-gemm, the weight packed at load: `src/kernels/cpu.rs`) against
/// burn's product on flex, with every epilogue, at the same awkward shapes, with and without
/// a bias.
#[test]
fn cpu_linear_with_a_packed_weight_matches_burn() {
    let device = Device::flex();
    for (rows, tokens, d_in, d_out) in
        [(1, 1, 7, 3), (1, 50, 48, 96), (2, 34, 100, 65), (3, 100, 64, 72), (1, 5, 700, 9)]
    {
        for bias in [true, false] {
            let mut linear = Linear::new(d_in, d_out, bias, &device);
            linear.weight = Param::from_tensor(random([d_in, d_out], &device));
            linear.bias = bias.then(|| Param::from_tensor(random([d_out], &device)));
            let mut packed = linear.clone();
            packed.pack();
            assert!(packed.packed.is_some() && packed.weight.val().dims() == [0, d_out], "packed, the weight let go");
            assert_eq!(packed.dims(), [d_in, d_out]);
            let x = random([rows, tokens, d_in], &device);
            let what = format!("cpu linear {rows}x{tokens}x{d_in}->{d_out} bias {bias}");
            for act in [Activation::None, Activation::QuickGelu, Activation::Gelu] {
                let got = kernels::linear(x.clone(), &packed, act);
                assert_near(&format!("{what} {act:?}"), got, reference::linear(x.clone(), &linear, act), 1e-5);
            }
            let residual = random([rows, tokens, d_out], &device);
            let got = kernels::linear_residual(x.clone(), &packed, residual.clone());
            let want = reference::linear(x.clone(), &linear, Activation::None) + residual;
            assert_near(&format!("{what} + residual"), got, want, 1e-5);
            let flat = x.clone().reshape([rows * tokens, d_in]);
            let got = packed.forward(flat.clone()).reshape([rows, tokens, d_out]);
            assert_near(&format!("{what} forward"), got, reference::linear(x, &linear, Activation::None), 1e-5);
        }
    }
}

/// The CPU's patch embedding (each patch's pixels gathered into a row, through the packed
/// product) against burn's convolution, at patch sizes and image sides that do not divide
/// each other (the convolution drops the remainder) and with several channels and images.
#[test]
fn cpu_patch_embedding_with_a_packed_weight_matches_burns_convolution() {
    let device = Device::flex();
    for (batch, channels, height, width, p, q, hidden) in [
        (1, 3, 28, 28, 7, 7, 24),
        (2, 3, 30, 23, 7, 7, 10),
        (1, 3, 64, 64, 32, 32, 33),
        (3, 1, 9, 11, 3, 3, 5),
        (1, 4, 16, 12, 4, 3, 8),
    ] {
        let mut conv = Conv2dConfig::new([channels, hidden], [p, q]).with_stride([p, q]).with_bias(false).init(&device);
        conv.weight = Param::from_tensor(random([hidden, channels, p, q], &device));
        let pixels = random([batch, channels, height, width], &device);
        let want = conv.forward(pixels.clone()).flatten::<3>(2, 3).swap_dims(1, 2);
        let mut packed_conv = conv.clone();
        let packed = kernels::pack_patch_embedding(&mut packed_conv).expect("packed on the CPU");
        assert_eq!(packed_conv.weight.val().dims(), [hidden, channels, 0, 0], "the convolution's weight let go");
        let got = kernels::patch_embedding(pixels.clone(), &packed_conv, Some(&packed));
        let what = format!("patch embedding {batch}x{channels}x{height}x{width}, {p}x{q} patches -> {hidden}");
        assert_near(&what, got, want.clone(), 1e-5);
        assert_near(&format!("{what}, unpacked"), kernels::patch_embedding(pixels, &conv, None), want, 0.0);
    }
}

#[test]
fn linear_with_8_bit_weights_matches_burn() {
    let device = device();
    // K a multiple of 32 (the format's blocks); N odd or one past a tile; one row; many rows.
    for (rows, tokens, d_in, d_out) in [(1, 1, 32, 3), (2, 34, 64, 65), (1, 67, 96, 130), (1, 300, 32, 8)] {
        let w: Vec<f32> = (0..d_in * d_out).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 0.4).collect();
        let (q, scales) = quant::quantize(&w);
        let scales = scales.iter().map(|s| s.to_f32()).collect();
        let matrix = quant::QuantMatrix::new("w", q, scales, d_out, d_in).unwrap();
        let mut linear = Linear::new(d_in, d_out, true, &device);
        linear.weight = Param::from_tensor(matrix.to_device(&device));
        linear.bias = Some(Param::from_tensor(random([d_out], &device)));
        assert!(matches!(linear.weight.val().dtype(), burn::tensor::DType::QFloat(_)), "8-bit on the device");
        let x = random([rows, tokens, d_in], &device);
        let what = format!("q8 linear {rows}x{tokens}x{d_in}->{d_out}");
        for act in [Activation::None, Activation::QuickGelu] {
            let got = kernels::linear(x.clone(), &linear, act);
            assert_near(&format!("{what} {act:?}"), got, reference::linear(x.clone(), &linear, act), 1e-5);
        }
        let residual = random([rows, tokens, d_out], &device);
        let got = kernels::linear_residual(x.clone(), &linear, residual.clone());
        let want = reference::linear(x, &linear, Activation::None) + residual;
        assert_near(&format!("{what} + residual"), got, want, 1e-5);
    }
}

#[test]
fn layer_norm_matches_burn() {
    let device = device();
    for (rows, tokens, width) in [(1, 1, 768), (2, 7, 48), (1, 3, 5), (3, 50, 100), (1, 2, 1280)] {
        let mut norm = LayerNormConfig::new(width).init(&device);
        norm.gamma = Param::from_tensor(random([width], &device));
        norm.beta = Some(Param::from_tensor(random([width], &device)));
        // Off-centre rows, so a mean taken wrong shows.
        let x = random([rows, tokens, width], &device) * 3.0 + 2.0;
        let got = kernels::layer_norm(x.clone(), &norm, 1e-5);
        assert_near(&format!("layer norm {rows}x{tokens}x{width}"), got, norm.forward(x), 1e-5);
    }
}

/// `[rows, tokens, tokens]`: causal within spans of `span` tokens (packed prompts), the rest
/// of each row's tail seeing only itself.
fn packed_visibility(rows: usize, tokens: usize, span: usize, used: usize) -> Vec<bool> {
    let mut visible = vec![false; rows * tokens * tokens];
    for r in 0..rows {
        for q in 0..tokens {
            for k in 0..=q {
                let same = if q < used { k < used && k / span == q / span } else { k == q };
                visible[(r * tokens + q) * tokens + k] = same;
            }
        }
    }
    visible
}

#[test]
fn attention_matches_burn_with_and_without_masks() {
    check_attention(&device(), kernels::attention);
}

/// The CPU's own attention (what runs in wasm: `src/kernels/cpu_attention.rs`) against burn's
/// on flex, at the same shapes and a head size that is not a multiple of 8 (the dot product's
/// tail).
#[test]
fn cpu_attention_matches_burn_with_and_without_masks() {
    check_attention(&Device::flex(), kernels::cpu_attention);
}

type AttentionFn = fn(Tensor<3>, usize, Option<&AttentionMask>, Option<Tensor<1, Int>>) -> Tensor<3>;

fn check_attention(device: &Device, attention: AttentionFn) {
    let device = device.clone();
    // (rows, tokens, heads, head_dim): one token; fewer tokens than a key block; an image's 50;
    // more queries than a workgroup (70, 130); head sizes of the tiny models and of CLIP.
    for (rows, tokens, heads, head_dim) in
        [(1, 1, 2, 8), (2, 5, 4, 12), (1, 50, 3, 64), (2, 70, 2, 8), (1, 130, 1, 16), (3, 9, 2, 13)]
    {
        let hidden = heads * head_dim;
        let qkv = random([rows, tokens, 3 * hidden], &device) * 2.0;
        let what = format!("attention {rows}x{tokens}, {heads} heads of {head_dim}");

        let got = attention(qkv.clone(), heads, None, None);
        assert_near(&format!("{what}, unmasked"), got, reference::attention(qkv.clone(), heads, None, None), 1e-5);

        let span = 4.min(tokens);
        let used = tokens - tokens / 5;
        let visible = packed_visibility(rows, tokens, span, used);
        let mask = AttentionMask::new(&visible, [rows, tokens, tokens], &device);
        let got = attention(qkv.clone(), heads, Some(&mask), None);
        let want = reference::attention(qkv.clone(), heads, Some(&mask), None);
        assert_near(&format!("{what}, packed causal mask"), got, want, 1e-5);

        // Queries at a few tokens of each row: the last, the first, one in the tail.
        let picks = [tokens - 1, 0, used.min(tokens - 1)];
        let index: Vec<i64> = (0..rows).flat_map(|r| picks.map(|p| (r * tokens + p) as i64)).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows * picks.len()]), &device);
        let got = attention(qkv.clone(), heads, None, Some(index.clone()));
        let want = reference::attention(qkv.clone(), heads, None, Some(index.clone()));
        assert_near(&format!("{what}, readout"), got, want, 1e-5);

        let read_visible: Vec<bool> = (0..rows)
            .flat_map(|r| picks.iter().flat_map(move |&p| (0..tokens).map(move |k| (r, p, k))))
            .map(|(r, p, k)| visible[(r * tokens + p) * tokens + k])
            .collect();
        let read_mask = AttentionMask::new(&read_visible, [rows, picks.len(), tokens], &device);
        let got = attention(qkv.clone(), heads, Some(&read_mask), Some(index.clone()));
        let want = reference::attention(qkv, heads, Some(&read_mask), Some(index));
        assert_near(&format!("{what}, readout with mask"), got, want, 1e-5);
    }
}
