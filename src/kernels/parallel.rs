//! Spreading a product's column panels over the threaded module's pool.
//!
//! Each panel of 8 columns is independent (every row of `x` times that panel's weights), so
//! the panels are handed out through rayon, one at a time: a fixed split (one range per
//! thread) left each product waiting for the later thread to wake (1.35–1.45× on 2 threads at
//! ViT-B/32's shapes, against 1.6–1.67× this way; `docs/cpu.md`). Products too small to be
//! worth a hand-off run on the calling thread, as does everything in the single-threaded
//! modules.

use std::ops::Range;

/// Multiply-adds below which a product stays on one thread (a B/32 text layer's smallest
/// product, 8 prompts × 77 tokens × 512 × 512, is 160 times more).
const MIN_WORK: usize = 1 << 20;

/// `f(range)` over `0..panels`, ranges disjoint and covering it, on the pool's threads when
/// there are several and the product does `work` multiply-adds or more.
pub fn panels(panels: usize, work: usize, f: impl Fn(Range<usize>) + Send + Sync) {
    #[cfg(feature = "threads")]
    if work >= MIN_WORK && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        (0..panels).into_par_iter().for_each(|p| f(p..p + 1));
        return;
    }
    let _ = (work, MIN_WORK);
    f(0..panels)
}

/// The output of a product, written by several threads at once, each to its own panels'
/// columns.
#[derive(Clone, Copy)]
pub struct Out(pub *mut f32);

// SAFETY: the threads given an `Out` write disjoint columns of it (one panel each), and the
// caller waits for them all before reading it (`panels` returns when every range is done).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}
