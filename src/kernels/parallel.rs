//! Spreading a product's column panels over the threaded module's pool.
//!
//! Each panel of 8 columns is independent (every row of `x` times that panel's weights), so
//! the panels are handed out through rayon, one at a time: a fixed split (one range per
//! thread) left each product waiting for the later thread to wake (1.35–1.45× on 2 threads at
//! ViT-B/32's shapes, against 1.6–1.67× this way; `docs/cpu.md`). Products too small to be
//! worth a hand-off run on the calling thread, as does everything in the single-threaded
//! modules. Each panel's epilogue (QuickGELU, the residual) runs on the thread that computed
//! it ([`finish_panel`]), and a whole forward pass runs on a pool thread ([`on_pool`]), so
//! that the thread handing out panels takes its share of them.

use std::ops::Range;

/// Multiply-adds below which a product stays on one thread (a B/32 text layer's smallest
/// product, 8 prompts × 77 tokens × 512 × 512, is 160 times more).
const MIN_WORK: usize = 1 << 20;

/// `f(range)` over `0..panels`, ranges disjoint and covering it, on the pool's threads when
/// there are several and the product does `work` multiply-adds or more.
pub fn panels(panels: usize, work: usize, f: impl Fn(Range<usize>) + Send + Sync) {
    #[cfg(all(feature = "threads", target_family = "wasm"))]
    if work >= MIN_WORK && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        (0..panels).into_par_iter().for_each(|p| f(p..p + 1));
        return;
    }
    let _ = (work, MIN_WORK);
    f(0..panels)
}

/// `finish(part, row, col)` over the columns `col .. col + cols` of every row of `out`
/// `[m, n]`: a product's epilogue, run by the thread that computed those columns.
///
/// # Safety
/// `out` points to `m · n` values, `col + cols ≤ n`, and no other thread touches those columns.
#[cfg(target_family = "wasm")]
#[inline(always)]
pub unsafe fn finish_panel(
    out: *mut f32,
    m: usize,
    n: usize,
    col: usize,
    cols: usize,
    finish: &impl Fn(&mut [f32], usize, usize),
) {
    for row in 0..m {
        // SAFETY: within `out`, per the contract; this thread's columns alone.
        finish(unsafe { std::slice::from_raw_parts_mut(out.add(row * n + col), cols) }, row, col);
    }
}

/// `f()` on one of the pool's threads, the caller waiting: a whole forward pass, so that each
/// product hands its panels out from inside the pool (the thread that asks takes panels too,
/// and only the others need waking), rather than from the module's own worker, which would
/// sleep through every product and be woken after each. In the single-threaded modules (and
/// natively, where rten-gemm runs its own rayon) `f()` runs where it is.
pub fn on_pool<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(feature = "threads", target_family = "wasm"))]
    if rayon::current_num_threads() > 1 && rayon::current_thread_index().is_none() {
        let mut out = None;
        let (f, slot) = (Unshared(f), Unshared(&mut out));
        // `take()` moves each whole `Unshared` into the closure, not its field alone.
        rayon::scope(move |_| *slot.take() = Some(Unshared(f.take()())));
        return out.expect("the pool ran the pass").take();
    }
    f()
}

/// A value moved to a pool thread and back, though its type need not be `Send` (the pass's
/// closure borrows the model, which the single-threaded modules never required to be `Sync`).
#[cfg(all(feature = "threads", target_family = "wasm"))]
struct Unshared<T>(T);

#[cfg(all(feature = "threads", target_family = "wasm"))]
impl<T> Unshared<T> {
    fn take(self) -> T {
        self.0
    }
}

// SAFETY: `on_pool`'s caller blocks until the pool thread is done with the value, so it is used
// by one thread at a time, handed over through rayon's job completion (which orders memory);
// nothing of it stays on the pool thread (the module's thread-locals there are scratch
// buffers, not parts of the value).
#[cfg(all(feature = "threads", target_family = "wasm"))]
unsafe impl<T> Send for Unshared<T> {}

/// The output of a product, written by several threads at once, each to its own panels'
/// columns.
#[derive(Clone, Copy)]
pub struct Out(pub *mut f32);

impl Out {
    /// The pointer, through a method so that a closure captures the whole `Out` (which is
    /// `Sync`), not its field alone (a raw pointer, which is not).
    pub fn ptr(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: the threads given an `Out` write disjoint columns of it (one panel each), and the
// caller waits for them all before reading it (`panels` returns when every range is done).
unsafe impl Send for Out {}
unsafe impl Sync for Out {}
