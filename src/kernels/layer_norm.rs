//! LayerNorm over the last dimension as one dispatch: one workgroup a row.
//!
//! The mean first, then the mean of the squared deviations from it (two passes over the row,
//! as exact as torch's), both summed in f32 across the workgroup through workgroup memory;
//! then `(x - mean) / √(var + eps) · γ + β`.

use burn::backend::cubecl::dtype_to_storage_type;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// Invocations per row (a power of two).
const THREADS: usize = 64;

/// The sum of `value` over the workgroup, in every invocation.
#[cube]
fn workgroup_sum(value: f32, partial: &mut Shared<[f32]>) -> f32 {
    let tid = UNIT_POS_X as usize;
    partial[tid] = value;
    sync_cube();
    #[unroll]
    for step in 0..comptime!(THREADS.trailing_zeros() as usize) {
        let half = comptime!(THREADS >> (step + 1));
        if tid < half {
            partial[tid] += partial[tid + half];
        }
        sync_cube();
    }
    let total = partial[0];
    sync_cube();
    total
}

#[cube(launch_unchecked)]
fn layer_norm_kernel<F: Float>(
    x: &Tensor<F>,
    gamma: &Tensor<F>,
    beta: &Tensor<F>,
    out: &mut Tensor<F>,
    eps: f32,
    #[define(F)] _dtype: ElemType,
) {
    let width = gamma.shape(0);
    let base = CUBE_POS_X as usize * width;
    let tid = UNIT_POS_X as usize;
    let mut partial = Shared::<[f32]>::new_slice(THREADS);

    let mut sum = 0.0f32;
    let mut i = tid;
    while i < width {
        sum += f32::cast_from(x[base + i]);
        i += THREADS;
    }
    let mean = workgroup_sum(sum, &mut partial) / f32::cast_from(width);

    let mut squares = 0.0f32;
    let mut i = tid;
    while i < width {
        let d = f32::cast_from(x[base + i]) - mean;
        squares += d * d;
        i += THREADS;
    }
    let var = workgroup_sum(squares, &mut partial) / f32::cast_from(width);
    let inv = 1.0 / (var + eps).sqrt();

    let mut i = tid;
    while i < width {
        let d = f32::cast_from(x[base + i]) - mean;
        out[base + i] = F::cast_from(d * inv * f32::cast_from(gamma[i]) + f32::cast_from(beta[i]));
        i += THREADS;
    }
}

/// `x` `[rows, width]` normalized along its rows.
pub fn layer_norm(x: CubeTensor, gamma: CubeTensor, beta: CubeTensor, eps: f64) -> CubeTensor {
    let x = into_contiguous(x);
    let gamma = into_contiguous(gamma);
    let beta = into_contiguous(beta);
    let rows = x.meta.shape().dims::<2>()[0];
    let client = x.client.clone();
    let out = empty_device_contiguous_dtype(client.clone(), x.device.clone(), x.meta.shape().clone(), x.dtype);
    if rows == 0 {
        return out;
    }
    let dtype = dtype_to_storage_type(x.dtype);
    // SAFETY: every index is below the row's width, within the row of its workgroup.
    unsafe {
        layer_norm_kernel::launch_unchecked(
            &client,
            CubeCount::Static(rows as u32, 1, 1),
            CubeDim::new_1d(THREADS as u32),
            x.into_tensor_arg(),
            gamma.into_tensor_arg(),
            beta.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            eps as f32,
            dtype,
        )
    };
    out
}
