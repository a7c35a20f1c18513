//! 8-bit products in wasm: the CPU's Linear layers with `dtype=q8` (issue 16, item 3).
//!
//! The weight stays as the file stores it, i8 with one scale per [`BLOCK`] = 32 values of K
//! ([`crate::quant`]), laid out in panels of [`NR`] = 8 columns: for every 4 consecutive k, the
//! 8 columns' 4 values (32 bytes). The activations are quantized as they come, per row and
//! block of 32, to 7 bits between the block's minimum and maximum (0 among them):
//! `x ≈ s · (u - z)`, `u` in `0..=127`, `s = (max - min) / 127`, the zero point `z =
//! round(-min / s)`, `u = round(x / s) + z`, rounded half to even. Seven bits because relaxed
//! SIMD's `i32x4.relaxed_dot_i8x16_i7x16_add_s`, which multiplies 4 k × 4 columns and adds in one
//! instruction, gives the same result on every engine only when its second operand is 7-bit and
//! non-negative; min to max (rather than ±max) because it keeps about what 8 symmetric bits
//! would (`scripts/q8_activations.py`: on ViT-B/32, as close to f32 as onnxruntime's q8).
//! Each block's sums start at `-z · Σ w` (the column sums are kept from packing), so they come
//! out as `Σ w · (u - z)`, exactly. The baseline module multiplies the same integers by
//! `i32x4.dot_i16x8_s`, on weights widened by `i16x8.load8x8_s`: the same sums, then the same
//! f32 arithmetic, so both modules give the same bits. A block's sums become f32 as `sum ·
//! (w_scale · s)`, added to the output in block order, which starts at the bias.
//!
//! The weights take 1.19 bytes per value (the i8, an f32 scale and an i16 sum per 32), against
//! 4 for f32. Measured against f32 and against transformers.js's q8 in `docs/cpu.md`.

use core::arch::wasm32::*;

/// Columns per panel.
pub const NR: usize = 8;
/// Values of K that share a scale (the weights' blocks, and the activations').
pub const BLOCK: usize = 32;
/// The activations' largest value once quantized (7 bits, unsigned).
pub const QMAX: f32 = 127.0;

/// 1.5 · 2^23: a float of magnitude under 2^22 added to it is rounded to an integer, half to
/// even, which is then its last bits.
const MAGIC: f32 = 12_582_912.0;
/// Rows per tile: 5 with relaxed SIMD (10 i32 accumulators, and 5 registers for the rest: 5
/// was faster than 4 at ViT-B/32's shapes, docs/cpu.md), 2 in the baseline module (whose dot
/// products leave pairs unsummed: 4 accumulators a row).
#[cfg(webclip_relaxed_simd)]
pub const MR: usize = 5;
#[cfg(not(webclip_relaxed_simd))]
pub const MR: usize = 2;

/// A weight `[n, k]` (a torch Linear's `[out, in]`) packed for [`gemm`].
pub struct Packed {
    /// Per panel, per 4 k: 8 columns × 4 values.
    values: Vec<i8>,
    /// Per panel, per block: the 8 columns' scales (0 past `n`).
    scales: Vec<f32>,
    /// Per panel, per block: `-Σ w` of the 8 columns.
    sums: Vec<i16>,
    /// The bias, zero-padded to whole panels.
    bias: Vec<f32>,
    k: usize,
    n: usize,
}

impl Packed {
    /// From the file's values `[n, k]` (row `c` is output column `c`), their scales `[n, k /
    /// 32]` and the bias. Where `n` is a multiple of [`NR`] the panels are laid out in `values`'
    /// own memory: within a panel, packing transposes an `[8, k / 4]` matrix of 4-byte groups,
    /// done in place by following its cycles.
    pub fn new(mut values: Vec<i8>, scales: &[f32], k: usize, n: usize, bias: Option<&[f32]>) -> Self {
        assert!(k.is_multiple_of(BLOCK), "k = {k} is a multiple of {BLOCK}");
        assert!(
            values.len() == n * k && scales.len() == n * (k / BLOCK),
            "values [{n}, {k}], scales [{n}, {}]",
            k / BLOCK
        );
        let panels = n.div_ceil(NR);
        let blocks = k / BLOCK;
        let mut packed_scales = vec![0f32; panels * blocks * NR];
        let mut sums = vec![0i16; panels * blocks * NR];
        for c in 0..n {
            for b in 0..blocks {
                let at = ((c / NR) * blocks + b) * NR + c % NR;
                packed_scales[at] = scales[c * blocks + b];
                let block = &values[c * k + b * BLOCK..c * k + (b + 1) * BLOCK];
                sums[at] = -block.iter().map(|&v| v as i16).sum::<i16>();
            }
        }
        let mut padded = vec![0f32; panels * NR];
        if let Some(bias) = bias {
            padded[..n].copy_from_slice(bias);
        }
        let groups = k / 4;
        let values = if n.is_multiple_of(NR) {
            let mut moved = vec![false; NR * groups];
            for panel in values.chunks_exact_mut(NR * k) {
                transpose_groups(panel, groups, &mut moved);
            }
            values
        } else {
            let mut data = vec![0i8; panels * NR * k];
            for c in 0..n {
                let (p, col) = (c / NR, c % NR);
                for g in 0..groups {
                    let to = p * NR * k + g * NR * 4 + col * 4;
                    data[to..to + 4].copy_from_slice(&values[c * k + g * 4..c * k + g * 4 + 4]);
                }
            }
            data
        };
        Self { values, scales: packed_scales, sums, bias: padded, k, n }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.values.len() + 4 * self.scales.len() + 2 * self.sums.len() + 4 * self.bias.len()
    }
}

/// `panel` `[8, groups]` of 4-byte groups to `[groups, 8]`, in place; `moved` has room for
/// `8 · groups` marks.
fn transpose_groups(panel: &mut [i8], groups: usize, moved: &mut [bool]) {
    let count = NR * groups;
    moved[..count].fill(false);
    // Group i = row · groups + g goes to g · 8 + row.
    let dest = |i: usize| (i % groups) * NR + i / groups;
    for start in 0..count {
        if moved[start] {
            continue;
        }
        let mut carry = [0i8; 4];
        carry.copy_from_slice(&panel[start * 4..start * 4 + 4]);
        let mut i = start;
        loop {
            moved[i] = true;
            let j = dest(i);
            let group: &mut [i8; 4] = (&mut panel[j * 4..j * 4 + 4]).try_into().expect("a group of 4");
            core::mem::swap(group, &mut carry);
            if j == start {
                break;
            }
            i = j;
        }
    }
}

/// The activations as the kernel multiplies them, per row and block: the 7-bit values (u8 for
/// relaxed SIMD's dot product, i16 for the baseline's), their scale and zero point.
#[derive(Default)]
pub struct Quantized {
    #[cfg(webclip_relaxed_simd)]
    values: Vec<u8>,
    #[cfg(not(webclip_relaxed_simd))]
    values: Vec<i16>,
    scales: Vec<f32>,
    zeros: Vec<i32>,
}

/// `x` `[m, k]` quantized per row and block of 32 (the module's doc): `s = (max - min) / 127`
/// over the block with 0 included, `z = round(-min · (1 / s))`, `u = round(x · (1 / s)) + z`
/// within `0..=127`, rounded half to even; an all-zero block has `s = 0`, `u = z = 0`.
pub fn quantize(x: &[f32], m: usize, k: usize, out: &mut Quantized) {
    assert!(k.is_multiple_of(BLOCK) && x.len() == m * k, "x [{m}, {k}]");
    out.values.clear();
    out.values.resize(m * k, Default::default());
    out.scales.clear();
    out.scales.resize(m * (k / BLOCK), 0.0);
    out.zeros.clear();
    out.zeros.resize(m * (k / BLOCK), 0);
    for (b, block) in x.chunks_exact(BLOCK).enumerate() {
        // SAFETY: a block is 32 f32s; the stores below write 32 values at b · 32.
        unsafe {
            let p = block.as_ptr();
            let v: [v128; 8] = core::array::from_fn(|i| v128_load(p.add(4 * i) as *const v128));
            // pmin/pmax are one instruction each on x86 where min/max (which order -0 below 0
            // and propagate NaN) take several; for finite values they give the same range.
            let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
            for x in &v {
                lo = f32x4_pmin(lo, *x);
                hi = f32x4_pmax(hi, *x);
            }
            let lo = f32x4_pmin(lo, i32x4_shuffle::<2, 3, 0, 1>(lo, lo));
            let lo = f32x4_extract_lane::<0>(f32x4_pmin(lo, i32x4_shuffle::<1, 0, 3, 2>(lo, lo)));
            let hi = f32x4_pmax(hi, i32x4_shuffle::<2, 3, 0, 1>(hi, hi));
            let hi = f32x4_extract_lane::<0>(f32x4_pmax(hi, i32x4_shuffle::<1, 0, 3, 2>(hi, hi)));
            let scale = (hi - lo) / QMAX;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let zero = (-lo * inv).round_ties_even();
            out.scales[b] = scale;
            out.zeros[b] = zero as i32;
            // Rounded half to even and made an integer by adding 1.5 · 2^23 (|x · inv| ≤ 127, so
            // the sum's last bit is the units), then clamped as floats and read from the bits:
            // what `nearest`, `+ z`, the clamp and `trunc_sat` give, in a third of the
            // instructions. A NaN (a block whose scale is subnormal) clamps to 0, as before.
            let (inv, zero) = (f32x4_splat(inv), f32x4_splat(zero));
            let (floor, ceil) = (f32x4_splat(MAGIC), f32x4_splat(MAGIC + QMAX));
            let q: [v128; 8] = core::array::from_fn(|i| {
                let r = f32x4_add(f32x4_add(f32x4_mul(v[i], inv), floor), zero);
                let r = f32x4_pmin(ceil, f32x4_pmax(floor, r));
                i32x4_sub(r, i32x4_splat(MAGIC.to_bits() as i32))
            });
            #[cfg(webclip_relaxed_simd)]
            {
                let to = out.values.as_mut_ptr().add(b * BLOCK) as *mut v128;
                for h in 0..2 {
                    let lo = i16x8_narrow_i32x4(q[4 * h], q[4 * h + 1]);
                    let hi = i16x8_narrow_i32x4(q[4 * h + 2], q[4 * h + 3]);
                    v128_store(to.add(h), u8x16_narrow_i16x8(lo, hi));
                }
            }
            #[cfg(not(webclip_relaxed_simd))]
            {
                let to = out.values.as_mut_ptr().add(b * BLOCK) as *mut v128;
                for h in 0..4 {
                    v128_store(to.add(h), i16x8_narrow_i32x4(q[2 * h], q[2 * h + 1]));
                }
            }
        }
    }
}

/// `out[m, n] = x · wᵀ + bias`, `x` quantized by [`quantize`] from `[m, k]`; then `finish` as
/// in [`super::simd128::gemm`].
pub fn gemm(x: &Quantized, m: usize, w: &Packed, out: &mut [f32], finish: impl Fn(&mut [f32], usize, usize) + Sync) {
    let (k, n) = (w.k, w.n);
    let blocks = k / BLOCK;
    let sizes = x.values.len() == m * k && x.scales.len() == m * blocks && x.zeros.len() == m * blocks;
    assert!(sizes && out.len() == m * n, "x [{m}, {k}], out [{m}, {n}]");
    let out = super::parallel::Out(out.as_mut_ptr());
    super::parallel::panels(n.div_ceil(NR), m * k * n, |range| {
        let out = out.ptr();
        for p in range {
            let cols = (n - p * NR).min(NR);
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(MR);
                // SAFETY: the assert above and `Packed::new`'s sizes bound every access; each
                // panel's columns are written by one thread alone.
                unsafe {
                    match rows {
                        #[cfg(webclip_relaxed_simd)]
                        5 => tile::<5>(x, r, w, p, out, cols),
                        #[cfg(webclip_relaxed_simd)]
                        4 => tile::<4>(x, r, w, p, out, cols),
                        #[cfg(webclip_relaxed_simd)]
                        3 => tile::<3>(x, r, w, p, out, cols),
                        2 => tile::<2>(x, r, w, p, out, cols),
                        _ => tile::<1>(x, r, w, p, out, cols),
                    }
                }
                r += rows;
            }
            // SAFETY: as above.
            unsafe { super::parallel::finish_panel(out, m, n, p * NR, cols, &finish) };
        }
    });
}

/// Rows `r0 .. r0 + R` of panel `p`'s columns.
///
/// # Safety
/// `r0 + R ≤ m`, `p` a panel of `w`, `cols` the panel's columns within `n`, `out` `[m, n]`.
#[cfg_attr(not(webclip_relaxed_simd), inline(always))]
#[cfg_attr(webclip_relaxed_simd, target_feature(enable = "relaxed-simd"), inline)]
unsafe fn tile<const R: usize>(x: &Quantized, r0: usize, w: &Packed, p: usize, out: *mut f32, cols: usize) {
    let (k, n) = (w.k, w.n);
    let blocks = k / BLOCK;
    unsafe {
        let (b0, b1) = (
            v128_load(w.bias.as_ptr().add(p * NR) as *const v128),
            v128_load(w.bias.as_ptr().add(p * NR + 4) as *const v128),
        );
        let mut acc_lo = [b0; R];
        let mut acc_hi = [b1; R];
        let panel = w.values.as_ptr().add(p * NR * k);
        for b in 0..blocks {
            let at = (p * blocks + b) * NR;
            let (lo, hi) = block_sums::<R>(x, r0, k, panel.add(b * BLOCK * NR), w.sums.as_ptr().add(at), b);
            let s0 = v128_load(w.scales.as_ptr().add(at) as *const v128);
            let s1 = v128_load(w.scales.as_ptr().add(at + 4) as *const v128);
            for r in 0..R {
                let sx = f32x4_splat(*x.scales.get_unchecked((r0 + r) * blocks + b));
                acc_lo[r] = f32x4_add(acc_lo[r], f32x4_mul(f32x4_convert_i32x4(lo[r]), f32x4_mul(s0, sx)));
                acc_hi[r] = f32x4_add(acc_hi[r], f32x4_mul(f32x4_convert_i32x4(hi[r]), f32x4_mul(s1, sx)));
            }
        }
        for r in 0..R {
            let row = out.add((r0 + r) * n + p * NR);
            if cols == NR {
                v128_store(row as *mut v128, acc_lo[r]);
                v128_store(row.add(4) as *mut v128, acc_hi[r]);
            } else {
                let mut tmp = [0f32; NR];
                v128_store(tmp.as_mut_ptr() as *mut v128, acc_lo[r]);
                v128_store(tmp.as_mut_ptr().add(4) as *mut v128, acc_hi[r]);
                core::ptr::copy_nonoverlapping(tmp.as_ptr(), row, cols);
            }
        }
    }
}

/// One block's exact sums `Σ w · (u - z)` for R rows × 8 columns (columns 0–3, then 4–7),
/// through relaxed SIMD's 8-bit dot product of the weights by `u`, from `-z · Σ w`.
///
/// # Safety
/// As [`tile`]; `wp` the block's 32 × 8 packed values, `sums` its 8 column sums.
#[cfg(webclip_relaxed_simd)]
#[target_feature(enable = "relaxed-simd")]
#[inline]
unsafe fn block_sums<const R: usize>(
    x: &Quantized,
    r0: usize,
    k: usize,
    wp: *const i8,
    sums: *const i16,
    b: usize,
) -> ([v128; R], [v128; R]) {
    unsafe {
        let (mut lo, mut hi) = start::<R>(x, r0, k, sums, b);
        let xp = x.values.as_ptr().add(r0 * k + b * BLOCK);
        // The i8 × i7 products summed in pairs (exact in i16: at most 2 · 127 · 128), then in
        // fours into i32 by a multiply-add with ones: three instructions on x86-64 without
        // AVX-VNNI, where V8 lowers the fused `relaxed_dot_i8x16_i7x16_add` to five (it
        // rebuilds the ones every time).
        let ones = i16x8_splat(1);
        for g in 0..BLOCK / 4 {
            let w0 = v128_load(wp.add(g * 32) as *const v128);
            let w1 = v128_load(wp.add(g * 32 + 16) as *const v128);
            for r in 0..R {
                let q = v128_load32_splat(xp.add(r * k + g * 4) as *const u32);
                lo[r] = i32x4_add(lo[r], i32x4_dot_i16x8(i16x8_relaxed_dot_i8x16_i7x16(w0, q), ones));
                hi[r] = i32x4_add(hi[r], i32x4_dot_i16x8(i16x8_relaxed_dot_i8x16_i7x16(w1, q), ones));
            }
        }
        (lo, hi)
    }
}

/// The same sums in SIMD128 alone: `i32x4.dot_i16x8_s` of 2 columns × 4 k of weights
/// (widened from 8 bytes) by the row's 4 values twice leaves `[c0 (k0 + k1), c0 (k2 + k3),
/// c1 (…), c1 (…)]`, so each row keeps 4 accumulators of pairs, summed once per block and
/// added to `-z · Σ w`.
#[cfg(not(webclip_relaxed_simd))]
#[inline(always)]
unsafe fn block_sums<const R: usize>(
    x: &Quantized,
    r0: usize,
    k: usize,
    wp: *const i8,
    sums: *const i16,
    b: usize,
) -> ([v128; R], [v128; R]) {
    unsafe {
        let (lo, hi) = start::<R>(x, r0, k, sums, b);
        let mut acc = [[i32x4_splat(0); 4]; R];
        let xp = x.values.as_ptr().add(r0 * k + b * BLOCK);
        for g in 0..BLOCK / 4 {
            let w: [v128; 4] = core::array::from_fn(|i| i16x8_load_extend_i8x8(wp.add(g * 32 + 8 * i)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let q = v128_load64_splat(xp.add(r * k + g * 4) as *const u64);
                for i in 0..4 {
                    acc[i] = i32x4_add(acc[i], i32x4_dot_i16x8(w[i], q));
                }
            }
        }
        let pairs = |a: v128, b: v128| i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(a, b), i32x4_shuffle::<1, 3, 5, 7>(a, b));
        (
            core::array::from_fn(|r| i32x4_add(lo[r], pairs(acc[r][0], acc[r][1]))),
            core::array::from_fn(|r| i32x4_add(hi[r], pairs(acc[r][2], acc[r][3]))),
        )
    }
}

/// `-z · Σ w` for R rows × 8 columns: where a block's sums start.
///
/// # Safety
/// As [`block_sums`].
#[inline(always)]
unsafe fn start<const R: usize>(
    x: &Quantized,
    r0: usize,
    k: usize,
    sums: *const i16,
    b: usize,
) -> ([v128; R], [v128; R]) {
    unsafe {
        let s = v128_load(sums as *const v128);
        let (s0, s1) = (i32x4_extend_low_i16x8(s), i32x4_extend_high_i16x8(s));
        let zero = |r: usize| i32x4_splat(*x.zeros.get_unchecked((r0 + r) * (k / BLOCK) + b));
        (core::array::from_fn(|r| i32x4_mul(s0, zero(r))), core::array::from_fn(|r| i32x4_mul(s1, zero(r))))
    }
}

/// Whether this build multiplies with relaxed SIMD's dot product.
pub const RELAXED: bool = cfg!(webclip_relaxed_simd);
