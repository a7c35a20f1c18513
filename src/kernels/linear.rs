//! A Linear layer as one dispatch: a register-tiled matrix product with the bias, the
//! activation and the residual add done before the result is written.
//!
//! `out[M, N] = act(x[M, K] · w[K, N] + bias[N]) + residual[M, N]`, `w` in burn's Linear
//! layout (`[d_in, d_out]`, row-major). Each workgroup computes a `block_m × 64` tile of the
//! output; each of its invocations a 4 × 4 block of it, in registers. Both operands go through
//! workgroup memory in slices of `BLOCK_K` along K, read from the buffers in vectors of 4 where
//! the shapes allow (K and N multiples of 4) and one value at a time elsewhere. Products are
//! summed in f32 whatever the storage type, so f16 storage keeps f32 accumulation.
//!
//! No subgroups and at most 8 KB of workgroup memory and 256 invocations, within WebGPU's
//! default limits.

use burn::backend::cubecl::dtype_to_storage_type;
use burn::tensor::Shape;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{Activation, Epilogue};

/// Columns of the output per workgroup, and rows and columns per invocation.
const BLOCK_N: usize = 64;
const THREAD_M: usize = 4;
const THREAD_N: usize = 4;
/// The slice of K staged in workgroup memory at a time.
const BLOCK_K: usize = 16;

/// Rows of the output per workgroup for a product with `m` rows.
///
/// | rows (M)  | block_m | invocations | why |
/// |-----------|---------|-------------|-----|
/// | ≤ 64      | 16      | 64          | one image (50 tokens) or a prompt batch (~67): more workgroups to spread, less padding |
/// | ≤ 256     | 32      | 128         | a few images or prompt rows |
/// | > 256     | 64      | 256         | photo batches (32 images: 1600 rows): the most reuse per value staged |
///
/// Chosen for the last tile's padding and the workgroups a small product gives a GPU; on
/// lavapipe the three sizes are within 10% of each other (`docs/speed.md`, "The tile table").
pub fn block_m(m: usize) -> usize {
    // For measuring the table: `WEBCLIP_BLOCK_M=16|32|64` fixes it for every product.
    #[cfg(not(target_family = "wasm"))]
    if let Some(bm) =
        std::env::var("WEBCLIP_BLOCK_M").ok().and_then(|v| v.parse().ok()).filter(|v| [16, 32, 64].contains(v))
    {
        return bm;
    }
    match m {
        0..=64 => 16,
        65..=256 => 32,
        _ => 64,
    }
}

#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
fn linear_kernel<F: Float, V: Size>(
    x: &Tensor<Vector<F, V>>,
    w: &Tensor<Vector<F, V>>,
    wq: &Tensor<u32>,
    wscale: &Tensor<f32>,
    bias: &Tensor<Vector<F, V>>,
    residual: &Tensor<Vector<F, V>>,
    out: &mut Tensor<Vector<F, V>>,
    #[comptime] block_m: usize,
    #[comptime] epilogue: Epilogue,
    #[comptime] q8: bool,
    #[define(F)] _dtype: ElemType,
) {
    let vec = x.vector_size();
    let m = x.shape(0);
    let k = x.shape(1);
    let n = out.shape(1);
    let threads_x = comptime!(BLOCK_N / THREAD_N);
    let threads = comptime!(threads_x * (block_m / THREAD_M));
    let tx = UNIT_POS_X as usize;
    let ty = UNIT_POS_Y as usize;
    let tid = ty * threads_x + tx;
    let row0 = CUBE_POS_Y as usize * block_m;
    let col0 = CUBE_POS_X as usize * BLOCK_N;

    // x's slice, stored K-major ([BLOCK_K][block_m]) so an invocation's 4 rows sit side by side.
    let mut xs = Shared::<[f32]>::new_slice(comptime!(BLOCK_K * block_m));
    // w's slice, [BLOCK_K][BLOCK_N].
    let mut ws = Shared::<[f32]>::new_slice(comptime!(BLOCK_K * BLOCK_N));
    let mut acc = Array::<f32>::new(comptime!(THREAD_M * THREAD_N));
    #[unroll]
    for i in 0..THREAD_M * THREAD_N {
        acc[i] = 0.0f32;
    }

    let x_vectors = comptime!(block_m * BLOCK_K / vec);
    let x_per_row = comptime!(BLOCK_K / vec);
    let w_vectors = comptime!(BLOCK_K * BLOCK_N / vec);
    let w_per_row = comptime!(BLOCK_N / vec);

    let mut k0 = 0usize;
    while k0 < k {
        #[unroll]
        for l in 0..comptime!(x_vectors.div_ceil(threads)) {
            let idx = tid + l * threads;
            if idx < x_vectors {
                let r = idx / x_per_row;
                let c = (idx % x_per_row) * vec;
                let gr = row0 + r;
                let gc = k0 + c;
                let mut v = Vector::<F, V>::new(F::new(0.0));
                if gr < m && gc < k {
                    v = x[(gr * k + gc) / vec];
                }
                #[unroll]
                for e in 0..vec {
                    xs[(c + e) * block_m + r] = f32::cast_from(v.extract(e));
                }
            }
        }
        if comptime!(q8) {
            load_q8_slice(wq, wscale, &mut ws, k0, col0, k, n, tid, threads);
        } else {
            #[unroll]
            for l in 0..comptime!(w_vectors.div_ceil(threads)) {
                let idx = tid + l * threads;
                if idx < w_vectors {
                    let r = idx / w_per_row;
                    let c = (idx % w_per_row) * vec;
                    let gr = k0 + r;
                    let gc = col0 + c;
                    let mut v = Vector::<F, V>::new(F::new(0.0));
                    if gr < k && gc < n {
                        v = w[(gr * n + gc) / vec];
                    }
                    #[unroll]
                    for e in 0..vec {
                        ws[r * BLOCK_N + c + e] = f32::cast_from(v.extract(e));
                    }
                }
            }
        }
        sync_cube();

        #[unroll]
        for kk in 0..BLOCK_K {
            let mut a = Array::<f32>::new(THREAD_M);
            let mut b = Array::<f32>::new(THREAD_N);
            #[unroll]
            for i in 0..THREAD_M {
                a[i] = xs[kk * block_m + ty * THREAD_M + i];
            }
            #[unroll]
            for j in 0..THREAD_N {
                b[j] = ws[kk * BLOCK_N + tx * THREAD_N + j];
            }
            #[unroll]
            for i in 0..THREAD_M {
                #[unroll]
                for j in 0..THREAD_N {
                    acc[i * THREAD_N + j] += a[i] * b[j];
                }
            }
        }
        sync_cube();
        k0 += BLOCK_K;
    }

    let col = col0 + tx * THREAD_N;
    #[unroll]
    for i in 0..THREAD_M {
        let row = row0 + ty * THREAD_M + i;
        if row < m {
            #[unroll]
            for jv in 0..comptime!(THREAD_N / vec) {
                let c = col + jv * vec;
                if c < n {
                    let mut bv = Vector::<F, V>::new(F::new(0.0));
                    if comptime!(epilogue.bias) {
                        bv = bias[c / vec];
                    }
                    let mut rv = Vector::<F, V>::new(F::new(0.0));
                    if comptime!(epilogue.residual) {
                        rv = residual[(row * n + c) / vec];
                    }
                    let mut o = Vector::<F, V>::empty();
                    #[unroll]
                    for e in 0..vec {
                        let mut y = acc[i * THREAD_N + jv * vec + e];
                        if comptime!(epilogue.bias) {
                            y += f32::cast_from(bv.extract(e));
                        }
                        y = activate(y, epilogue.activation);
                        if comptime!(epilogue.residual) {
                            y += f32::cast_from(rv.extract(e));
                        }
                        o.insert(e, F::cast_from(y));
                    }
                    out[(row * n + c) / vec] = o;
                }
            }
        }
    }
}

/// w's slice from 8-bit weights: `wq` `[N, K / 4]`, four i8 values a word along K (burn's
/// `Q8S` packed in u32, the first value in the low byte), `wscale` `[N, K / 32]`, one f32
/// scale per 32 values along K. A slice of [`BLOCK_K`] (16) values lies within one scale's
/// block, since K slices start at multiples of 16 and K is a multiple of 32.
#[cube]
#[allow(clippy::too_many_arguments)]
fn load_q8_slice(
    wq: &Tensor<u32>,
    wscale: &Tensor<f32>,
    ws: &mut Shared<[f32]>,
    k0: usize,
    col0: usize,
    k: usize,
    n: usize,
    tid: usize,
    #[comptime] threads: usize,
) {
    let words = comptime!(BLOCK_N * BLOCK_K / 4);
    #[unroll]
    for l in 0..comptime!(words.div_ceil(threads)) {
        let idx = tid + l * threads;
        if idx < words {
            let c = idx / comptime!(BLOCK_K / 4);
            let i = idx % comptime!(BLOCK_K / 4);
            let gk = k0 + 4 * i;
            let gn = col0 + c;
            let mut word = 0u32;
            let mut scale = 0.0f32;
            if gn < n && gk < k {
                word = wq[gn * (k / 4) + gk / 4];
                scale = wscale[gn * (k / 32) + gk / 32];
            }
            #[unroll]
            for e in 0..4usize {
                let byte = f32::cast_from((word >> comptime!(8 * e as u32)) & 255u32);
                let mut value = byte;
                if byte >= 128.0f32 {
                    value = byte - 256.0f32;
                }
                ws[(4 * i + e) * BLOCK_N + c] = value * scale;
            }
        }
    }
}

#[cube]
fn activate(y: f32, #[comptime] activation: Activation) -> f32 {
    let mut out = y;
    if comptime!(activation == Activation::QuickGelu) {
        // transformers: x * torch.sigmoid(1.702 * x), sigmoid = 1 / (1 + exp(-x)).
        out = y * (1.0f32 / (1.0f32 + (y * -1.702f32).exp()));
    } else if comptime!(activation == Activation::Gelu) {
        // burn's and transformers' erf GELU: x (erf(x / √2) + 1) / 2.
        out = y * (Erf::erf(y / core::f32::consts::SQRT_2) + 1.0f32) / 2.0f32;
    }
    out
}

/// `x` `[M, K]` times `w` `[K, N]`, with `epilogue`'s bias `[N]` and residual `[M, N]` (each
/// ignored when the epilogue does not use it).
pub fn linear(x: CubeTensor, w: CubeTensor, bias: CubeTensor, residual: CubeTensor, epilogue: Epilogue) -> CubeTensor {
    let w = into_contiguous(w);
    let n = w.meta.shape().dims::<2>()[1];
    launch(x, Weight::Dense(Box::new(w)), n, bias, residual, epilogue)
}

/// The same with 8-bit weights, `w` a burn `Q8S` tensor `[N, K]` (packed along K, per-block
/// scales of 32), dequantized as the kernel stages it: the weights stay 8-bit on the device.
pub fn linear_q8(
    x: CubeTensor,
    w: CubeTensor,
    bias: CubeTensor,
    residual: CubeTensor,
    epilogue: Epilogue,
) -> CubeTensor {
    let n = w.meta.shape().dims::<2>()[0];
    // Read by position, not through strides: the weight as uploaded (row-major words, its
    // strides counted in words), not a view of it.
    let k = w.meta.shape().dims::<2>()[1];
    let strides = w.meta.strides();
    assert!(
        strides[1] == 1 && strides[0] == k.div_ceil(4),
        "an 8-bit weight in its stored layout, not {:?} / {strides:?}",
        w.meta.shape()
    );
    let (values, scales) = w.quantized_handles().expect("a quantized weight");
    launch(x, Weight::Q8(Box::new(values), Box::new(scales)), n, bias, residual, epilogue)
}

enum Weight {
    Dense(Box<CubeTensor>),
    Q8(Box<CubeTensor>, Box<CubeTensor>),
}

fn launch(
    x: CubeTensor,
    w: Weight,
    n: usize,
    bias: CubeTensor,
    residual: CubeTensor,
    epilogue: Epilogue,
) -> CubeTensor {
    let x = into_contiguous(x);
    let [m, k] = x.meta.shape().dims::<2>();
    let bias = if epilogue.bias { into_contiguous(bias) } else { x.clone() };
    let residual = if epilogue.residual { into_contiguous(residual) } else { x.clone() };
    let q8 = matches!(w, Weight::Q8(..));
    let (w, wq, wscale) = match w {
        Weight::Dense(w) => (*w, x.clone(), x.clone()),
        Weight::Q8(values, scales) => (x.clone(), *values, *scales),
    };
    let client = x.client.clone();
    let out = empty_device_contiguous_dtype(client.clone(), x.device.clone(), Shape::new([m, n]), x.dtype);
    if m == 0 || n == 0 {
        return out;
    }
    let vec = if k.is_multiple_of(4) && n.is_multiple_of(4) { 4 } else { 1 };
    let bm = block_m(m);
    let cube_dim = CubeDim::new_2d((BLOCK_N / THREAD_N) as u32, (bm / THREAD_M) as u32);
    let cube_count = CubeCount::Static(n.div_ceil(BLOCK_N) as u32, m.div_ceil(bm) as u32, 1);
    let dtype = dtype_to_storage_type(x.dtype);
    // SAFETY: every read and write is guarded by the shapes passed alongside.
    unsafe {
        linear_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            vec,
            x.into_tensor_arg(),
            w.into_tensor_arg(),
            wq.into_tensor_arg(),
            wscale.into_tensor_arg(),
            bias.into_tensor_arg(),
            residual.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            bm,
            epilogue,
            q8,
            dtype,
        )
    };
    out
}
