//! Native timings: `cargo run --release` (one thread: RAYON_NUM_THREADS=1 is set here).

use std::time::Instant;

fn main() {
    // SAFETY: before any thread starts.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    let start = Instant::now();
    let now = move || start.elapsed().as_secs_f64() * 1000.0;
    println!("| shape (M×K×N) | gemm | rten, packed per call | rten, pre-packed | max diff |");
    println!("|---|---|---|---|---|");
    for (name, m, k, n) in gemm_compare_shapes() {
        let t: Vec<f64> = (0..3).map(|e| gemm_compare::time(m, k, n, e, 7, 5, &now)).collect();
        let d = gemm_compare::max_diff(m, k, n, 2);
        println!("| {name} {m}×{k}×{n} | {:.3} ms | {:.3} ms | {:.3} ms | {d:.1e} |", t[0], t[1], t[2]);
    }
}

fn gemm_compare_shapes() -> Vec<(&'static str, usize, usize, usize)> {
    vec![
        ("vision qkv", 50, 768, 2304),
        ("vision out_proj", 50, 768, 768),
        ("vision fc1", 50, 768, 3072),
        ("vision fc2", 50, 3072, 768),
        ("text qkv (8 prompts)", 64, 512, 1536),
        ("text fc1", 64, 512, 2048),
        ("text fc2", 64, 2048, 512),
        ("last layer fc1 (1 row)", 1, 768, 3072),
    ]
}
