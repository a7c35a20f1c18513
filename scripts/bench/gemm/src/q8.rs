//! A prototype of 8-bit products for the page (issue 16, item 3), measured against the f32
//! kernel: weights i8 with one f32 scale per 32 values of K (webclip's q8 layout), activations
//! quantized per row and block of 32 as they come. Packed by pairs of k, so that
//! `i16x8.load8x8_s` widens 4 columns × 2 k of weights and `i32x4.dot_i16x8_s` multiplies them
//! by a row's two values, summing pairs: 2 k × 4 columns an instruction. A tile is 4 rows × 8
//! columns of i32 sums (8 registers); each block of 32 is scaled into the f32 output.

use core::arch::wasm32::*;

pub const NR: usize = 8;
pub const BLOCK: usize = 32;

pub struct Packed {
    /// Per panel, per k pair: 16 bytes (columns 0-3 by pairs, then 4-7).
    pub values: Vec<i8>,
    /// Per panel, per block: 8 scales.
    pub scales: Vec<f32>,
    pub k: usize,
    pub n: usize,
}

/// Quantize `w` `[k, n]` (k a multiple of 32, n of 8) per block of 32 along k, and pack.
pub fn pack(w: &[f32], k: usize, n: usize) -> Packed {
    assert!(k.is_multiple_of(BLOCK) && n.is_multiple_of(NR));
    let panels = n / NR;
    let blocks = k / BLOCK;
    let mut values = vec![0i8; panels * k * NR];
    let mut scales = vec![0f32; panels * blocks * NR];
    for p in 0..panels {
        for b in 0..blocks {
            for c in 0..NR {
                let col = p * NR + c;
                let max = (0..BLOCK).map(|i| w[(b * BLOCK + i) * n + col].abs()).fold(0f32, f32::max);
                let s = max / 127.0;
                scales[(p * blocks + b) * NR + c] = s;
                for i in 0..BLOCK {
                    let kk = b * BLOCK + i;
                    let q = if s > 0.0 { (w[kk * n + col] / s).round().clamp(-127.0, 127.0) as i8 } else { 0 };
                    // k pair kk / 2, half c / 4, column c % 4, slot kk % 2.
                    let at = p * k * NR + (kk / 2) * 16 + (c / 4) * 8 + (c % 4) * 2 + kk % 2;
                    values[at] = q;
                }
            }
        }
    }
    Packed { values, scales, k, n }
}

/// `x` `[m, k]` quantized per row and block: i16 values (pairs adjacent) and scales `[m, k/32]`.
pub fn quantize(x: &[f32], m: usize, k: usize, q: &mut Vec<i16>, s: &mut Vec<f32>) {
    q.clear();
    s.clear();
    for row in x.chunks_exact(k).take(m) {
        for block in row.chunks_exact(BLOCK) {
            let max = block.iter().fold(0f32, |a, v| a.max(v.abs()));
            let scale = max / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            s.push(scale);
            q.extend(block.iter().map(|v| (v * inv).round() as i16));
        }
    }
}

/// `out[m, n] = x · w` with both in 8 bits (x quantized by [`quantize`]).
pub fn gemm(xq: &[i16], xs: &[f32], m: usize, w: &Packed, out: &mut [f32]) {
    let (k, n) = (w.k, w.n);
    let blocks = k / BLOCK;
    out.fill(0.0);
    for p in 0..n / NR {
        let panel = &w.values[p * k * NR..(p + 1) * k * NR];
        let pscales = &w.scales[p * blocks * NR..(p + 1) * blocks * NR];
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(4);
            unsafe {
                match rows {
                    4 => tile::<4>(xq, xs, r, k, panel, pscales, out, n, p),
                    3 => tile::<3>(xq, xs, r, k, panel, pscales, out, n, p),
                    2 => tile::<2>(xq, xs, r, k, panel, pscales, out, n, p),
                    _ => tile::<1>(xq, xs, r, k, panel, pscales, out, n, p),
                }
            }
            r += rows;
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<const R: usize>(
    xq: &[i16],
    xs: &[f32],
    r0: usize,
    k: usize,
    panel: &[i8],
    pscales: &[f32],
    out: &mut [f32],
    n: usize,
    p: usize,
) {
    unsafe {
        let blocks = k / BLOCK;
        let wp = panel.as_ptr();
        for b in 0..blocks {
            let mut lo = [i32x4_splat(0); R];
            let mut hi = [i32x4_splat(0); R];
            for pair in b * BLOCK / 2..(b + 1) * BLOCK / 2 {
                let w0 = i16x8_load_extend_i8x8(wp.add(pair * 16));
                let w1 = i16x8_load_extend_i8x8(wp.add(pair * 16 + 8));
                for r in 0..R {
                    let x = v128_load32_splat(xq.as_ptr().add((r0 + r) * k + pair * 2) as *const u32);
                    lo[r] = i32x4_add(lo[r], i32x4_dot_i16x8(x, w0));
                    hi[r] = i32x4_add(hi[r], i32x4_dot_i16x8(x, w1));
                }
            }
            let s0 = v128_load(pscales.as_ptr().add(b * NR) as *const v128);
            let s1 = v128_load(pscales.as_ptr().add(b * NR + 4) as *const v128);
            for r in 0..R {
                let sx = f32x4_splat(*xs.get_unchecked((r0 + r) * blocks + b));
                let o = out.as_mut_ptr().add((r0 + r) * n + p * NR);
                let a =
                    f32x4_add(v128_load(o as *const v128), f32x4_mul(f32x4_convert_i32x4(lo[r]), f32x4_mul(s0, sx)));
                v128_store(o as *mut v128, a);
                let o = o.add(4);
                let a =
                    f32x4_add(v128_load(o as *const v128), f32x4_mul(f32x4_convert_i32x4(hi[r]), f32x4_mul(s1, sx)));
                v128_store(o as *mut v128, a);
            }
        }
    }
}

/// With relaxed SIMD: `i32x4.relaxed_dot_i8x16_i7x16_add_s`, 4 k × 4 columns and the add in
/// one instruction (one VNNI `vpdpbusd` where the CPU has it). Its second operand must be
/// 7-bit and non-negative for a result every engine agrees on, so the activations are
/// quantized to -63..=63 and offset by 64; the offset's share, `64 · Σ w`, per block and
/// column, is taken off at the scaling.
#[cfg(target_feature = "relaxed-simd")]
pub mod relaxed {
    use super::{BLOCK, NR};
    use core::arch::wasm32::*;

    pub struct Packed {
        /// Per panel, per 4 k: 32 bytes (columns 0-3 by 4 k, then 4-7).
        pub values: Vec<i8>,
        pub scales: Vec<f32>,
        /// 64 · Σ w over each block, per column, as f32 (per panel, per block: 8).
        pub offsets: Vec<f32>,
        pub k: usize,
        pub n: usize,
    }

    pub fn pack(w: &[f32], k: usize, n: usize) -> Packed {
        let panels = n / NR;
        let blocks = k / BLOCK;
        let mut values = vec![0i8; panels * k * NR];
        let mut scales = vec![0f32; panels * blocks * NR];
        let mut offsets = vec![0f32; panels * blocks * NR];
        for p in 0..panels {
            for b in 0..blocks {
                for c in 0..NR {
                    let col = p * NR + c;
                    let max = (0..BLOCK).map(|i| w[(b * BLOCK + i) * n + col].abs()).fold(0f32, f32::max);
                    let s = max / 127.0;
                    scales[(p * blocks + b) * NR + c] = s;
                    let mut sum = 0i32;
                    for i in 0..BLOCK {
                        let kk = b * BLOCK + i;
                        let q = if s > 0.0 { (w[kk * n + col] / s).round().clamp(-127.0, 127.0) as i8 } else { 0 };
                        sum += q as i32;
                        let at = p * k * NR + (kk / 4) * 32 + (c / 4) * 16 + (c % 4) * 4 + kk % 4;
                        values[at] = q;
                    }
                    offsets[(p * blocks + b) * NR + c] = 64.0 * sum as f32;
                }
            }
        }
        Packed { values, scales, offsets, k, n }
    }

    /// `x` quantized per row and block to -63..=63, stored offset by 64 (u8 0..=127).
    pub fn quantize(x: &[f32], m: usize, k: usize, q: &mut Vec<u8>, s: &mut Vec<f32>) {
        q.clear();
        s.clear();
        for row in x.chunks_exact(k).take(m) {
            for block in row.chunks_exact(BLOCK) {
                let max = block.iter().fold(0f32, |a, v| a.max(v.abs()));
                let scale = max / 63.0;
                let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                s.push(scale);
                q.extend(block.iter().map(|v| ((v * inv).round() as i32 + 64) as u8));
            }
        }
    }

    pub fn gemm(xq: &[u8], xs: &[f32], m: usize, w: &Packed, out: &mut [f32]) {
        let (k, n) = (w.k, w.n);
        let blocks = k / BLOCK;
        out.fill(0.0);
        for p in 0..n / NR {
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(4);
                unsafe {
                    match rows {
                        4 => tile::<4>(xq, xs, r, w, out, p, blocks),
                        3 => tile::<3>(xq, xs, r, w, out, p, blocks),
                        2 => tile::<2>(xq, xs, r, w, out, p, blocks),
                        _ => tile::<1>(xq, xs, r, w, out, p, blocks),
                    }
                }
                r += rows;
            }
        }
    }

    #[inline(always)]
    unsafe fn tile<const R: usize>(
        xq: &[u8],
        xs: &[f32],
        r0: usize,
        w: &Packed,
        out: &mut [f32],
        p: usize,
        blocks: usize,
    ) {
        unsafe {
            let (k, n) = (w.k, w.n);
            let wp = w.values.as_ptr().add(p * k * NR);
            for b in 0..blocks {
                let mut lo = [i32x4_splat(0); R];
                let mut hi = [i32x4_splat(0); R];
                for quad in b * BLOCK / 4..(b + 1) * BLOCK / 4 {
                    let w0 = v128_load(wp.add(quad * 32) as *const v128);
                    let w1 = v128_load(wp.add(quad * 32 + 16) as *const v128);
                    for r in 0..R {
                        let x = v128_load32_splat(xq.as_ptr().add((r0 + r) * k + quad * 4) as *const u32);
                        lo[r] = i32x4_relaxed_dot_i8x16_i7x16_add(w0, x, lo[r]);
                        hi[r] = i32x4_relaxed_dot_i8x16_i7x16_add(w1, x, hi[r]);
                    }
                }
                let at = (p * blocks + b) * NR;
                let (s0, s1) = (
                    v128_load(w.scales.as_ptr().add(at) as *const v128),
                    v128_load(w.scales.as_ptr().add(at + 4) as *const v128),
                );
                let (z0, z1) = (
                    v128_load(w.offsets.as_ptr().add(at) as *const v128),
                    v128_load(w.offsets.as_ptr().add(at + 4) as *const v128),
                );
                for r in 0..R {
                    let sx = f32x4_splat(*xs.get_unchecked((r0 + r) * blocks + b));
                    let o = out.as_mut_ptr().add((r0 + r) * n + p * NR);
                    let v = f32x4_sub(f32x4_convert_i32x4(lo[r]), z0);
                    v128_store(o as *mut v128, f32x4_add(v128_load(o as *const v128), f32x4_mul(v, f32x4_mul(s0, sx))));
                    let o = o.add(4);
                    let v = f32x4_sub(f32x4_convert_i32x4(hi[r]), z1);
                    v128_store(o as *mut v128, f32x4_add(v128_load(o as *const v128), f32x4_mul(v, f32x4_mul(s1, sx))));
                }
            }
        }
    }
}
