//! The CPU's matrix product in wasm: a SIMD128 kernel sized for V8's 16 vector registers.
//!
//! The weight is packed once, at load, into panels of [`NR`] = 8 columns, K-major (panel `p`
//! holds `w[k, 8p .. 8p + 8]` for every `k`, zero-padded past `d_out`). Each step of the
//! kernel keeps a tile of [`MR`] = 4 rows × 8 columns in 8 vector registers, starts it at the
//! bias, and for each `k` loads two vectors of the panel and broadcasts one value of each row:
//! 8 multiply-adds for 6 loads, nothing spilled. Built with `--cfg webclip_relaxed_simd` (the
//! page's second module, `scripts/build-relaxed.sh`) the multiply-adds are relaxed SIMD's fused
//! ones: the feature is enabled on the tile alone, since enabling it crate-wide breaks a
//! dependency (macerator 0.5.2, flex's SIMD layer, does not compile with `+relaxed-simd`). Neither crate at hand does this well in V8: gemm (burn flex's,
//! which packs the weight on every call) and rten-gemm (whose 8 × 8 tile needs 16 accumulators
//! and spills) are 1.3–1.7× slower at ViT-B/32's shapes in Chromium (`docs/cpu.md`).

use core::arch::wasm32::*;

/// Columns per panel: two vectors of 4.
pub const NR: usize = 8;
/// Rows per tile.
pub const MR: usize = 4;

/// `w` `[k, n]` row-major, packed into panels. Where `n` is a multiple of [`NR`] (every
/// ViT's widths) the panels take exactly `w`'s size and are laid out in `w`'s own memory: as
/// blocks of 8 values, the packing is the transposition of a `[k, n / 8]` matrix, done in place
/// by following its cycles, so loading never holds a weight twice. Otherwise a new buffer,
/// zero-padded to whole panels.
pub fn pack(mut w: Vec<f32>, k: usize, n: usize) -> Vec<f32> {
    assert_eq!(w.len(), k * n, "w is [{k}, {n}]");
    let panels = n.div_ceil(NR);
    if n.is_multiple_of(NR) {
        // Block i = kk · panels + p (row kk, panel p) goes to p · k + kk.
        let blocks = k * panels;
        let dest = |i: usize| (i % panels) * k + i / panels;
        let mut moved = vec![false; blocks];
        for start in 0..blocks {
            if moved[start] {
                continue;
            }
            let mut carry = [0f32; NR];
            carry.copy_from_slice(&w[start * NR..start * NR + NR]);
            let mut i = start;
            loop {
                moved[i] = true;
                let j = dest(i);
                let block: &mut [f32; NR] = (&mut w[j * NR..j * NR + NR]).try_into().expect("a block of NR");
                std::mem::swap(block, &mut carry);
                if j == start {
                    break;
                }
                i = j;
            }
        }
        return w;
    }
    let mut data = vec![0.0; panels * k * NR];
    for (p, panel) in data.chunks_exact_mut(k * NR).enumerate() {
        let cols = (n - p * NR).min(NR);
        for (kk, row) in panel.chunks_exact_mut(NR).enumerate() {
            row[..cols].copy_from_slice(&w[kk * n + p * NR..kk * n + p * NR + cols]);
        }
    }
    data
}

/// `a · b + c`: fused in the relaxed build, a multiply then an add in the baseline one.
macro_rules! madd {
    ($a:expr, $b:expr, $c:expr) => {{
        #[cfg(webclip_relaxed_simd)]
        let r = f32x4_relaxed_madd($a, $b, $c);
        #[cfg(not(webclip_relaxed_simd))]
        let r = f32x4_add(f32x4_mul($a, $b), $c);
        r
    }};
}

/// Whether this build's kernel multiplies and adds in one (relaxed SIMD) step.
pub const RELAXED: bool = cfg!(webclip_relaxed_simd);

/// `out[..R, ..cols] = a[..R, ..k] · panel + bias`, rows `k` (a) and `ldo` (out) apart.
///
/// # Safety
/// `a` holds `R` rows of `k` values, `panel` `k · NR` values, `bias` `NR` values, `out` `R`
/// rows of `cols ≤ NR` values.
#[cfg_attr(not(webclip_relaxed_simd), inline(always))]
#[cfg_attr(webclip_relaxed_simd, target_feature(enable = "relaxed-simd"), inline)]
unsafe fn tile<const R: usize>(
    a: *const f32,
    panel: *const f32,
    k: usize,
    bias: *const f32,
    out: *mut f32,
    ldo: usize,
    cols: usize,
) {
    unsafe {
        let (b0, b1) = (v128_load(bias as *const v128), v128_load(bias.add(4) as *const v128));
        let mut lo = [b0; R];
        let mut hi = [b1; R];
        for kk in 0..k {
            let w0 = v128_load(panel.add(kk * NR) as *const v128);
            let w1 = v128_load(panel.add(kk * NR + 4) as *const v128);
            for r in 0..R {
                let x = v128_load32_splat(a.add(r * k + kk) as *const u32);
                lo[r] = madd!(x, w0, lo[r]);
                hi[r] = madd!(x, w1, hi[r]);
            }
        }
        for r in 0..R {
            let row = out.add(r * ldo);
            if cols == NR {
                v128_store(row as *mut v128, lo[r]);
                v128_store(row.add(4) as *mut v128, hi[r]);
            } else {
                let mut tmp = [0f32; NR];
                v128_store(tmp.as_mut_ptr() as *mut v128, lo[r]);
                v128_store(tmp.as_mut_ptr().add(4) as *mut v128, hi[r]);
                core::ptr::copy_nonoverlapping(tmp.as_ptr(), row, cols);
            }
        }
    }
}

/// `out[m, n] = x[m, k] · w + bias`, `w` packed by [`pack`], `bias` padded to whole panels;
/// then `finish(part, row, col)` over each panel's part of each row (`out[row, col..]`, up to 8
/// values), while the panel is in cache and on the thread that computed it.
#[allow(clippy::too_many_arguments)] // a BLAS-style signature: the shapes beside the buffers
pub fn gemm(
    x: &[f32],
    m: usize,
    k: usize,
    n: usize,
    packed: &[f32],
    bias: &[f32],
    out: &mut [f32],
    finish: impl Fn(&mut [f32], usize, usize) + Sync,
) {
    let panels = n.div_ceil(NR);
    assert!(x.len() == m * k && out.len() == m * n, "x [{m}, {k}], out [{m}, {n}]");
    assert!(packed.len() == panels * k * NR && bias.len() == panels * NR, "w packed for [{k}, {n}]");
    let out = super::parallel::Out(out.as_mut_ptr());
    super::parallel::panels(panels, m * k * n, |range| {
        let out = out.ptr();
        for p in range {
            let cols = (n - p * NR).min(NR);
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(MR);
                // SAFETY: the asserts above bound every pointer the tile reads and writes; each
                // panel's columns are written by one thread alone.
                unsafe {
                    let (xp, op) = (x.as_ptr().add(r * k), out.add(r * n + p * NR));
                    let (wp, bp) = (packed.as_ptr().add(p * k * NR), bias.as_ptr().add(p * NR));
                    match rows {
                        1 => tile::<1>(xp, wp, k, bp, op, n, cols),
                        2 => tile::<2>(xp, wp, k, bp, op, n, cols),
                        3 => tile::<3>(xp, wp, k, bp, op, n, cols),
                        _ => tile::<MR>(xp, wp, k, bp, op, n, cols),
                    }
                }
                r += rows;
            }
            // SAFETY: as above.
            unsafe { super::parallel::finish_panel(out, m, n, p * NR, cols, &finish) };
        }
    });
}
