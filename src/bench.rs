//! Where the time goes: the stages of a zero-shot classification (decode, preprocess, vision
//! tower, text tower, scoring) timed one by one, as medians of several runs after a warm-up
//! run (GPU pipelines compile on first use). `webclip bench` prints them.
//!
//! Each device stage ends with a read-back, so its time includes the wait for the device, as
//! a caller who reads the result sees it.

use std::time::Instant;

use crate::Error;
use crate::preprocess;
use crate::zeroshot::Clip;

/// The timed stages, in order.
pub const STAGES: [&str; 5] = ["decode", "preprocess", "vision", "text", "scoring"];

/// Milliseconds per stage, one entry per timed run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub batch: usize,
    pub prompts: usize,
    pub runs: Vec<[f64; 5]>,
}

impl BenchReport {
    /// The median of each stage over the runs.
    pub fn median(&self) -> [f64; 5] {
        self.per_stage(|v| {
            let n = v.len();
            if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
        })
    }

    /// The fastest run of each stage.
    pub fn min(&self) -> [f64; 5] {
        self.per_stage(|v| v[0])
    }

    fn per_stage(&self, f: impl Fn(&[f64]) -> f64) -> [f64; 5] {
        std::array::from_fn(|s| {
            let mut v: Vec<f64> = self.runs.iter().map(|r| r[s]).collect();
            v.sort_by(f64::total_cmp);
            f(&v)
        })
    }
}

/// Time `runs` classifications of `batch` copies of one encoded image against `prompts`
/// (used verbatim), after one untimed warm-up run.
pub fn bench(clip: &Clip, image: &[u8], prompts: &[String], batch: usize, runs: usize) -> Result<BenchReport, Error> {
    if batch == 0 || runs == 0 {
        return Err(Error::Input("--batch and --runs must be at least 1".into()));
    }
    if prompts.is_empty() {
        return Err(Error::Input("no prompts to embed".into()));
    }
    let labels = clip.label_set(prompts, &["{}"])?;
    let mut out = Vec::with_capacity(runs);
    for run in 0..=runs {
        let mut t = [0f64; 5];
        let mut clock = Instant::now();
        let mut lap = |t: &mut f64| {
            *t = clock.elapsed().as_secs_f64() * 1000.0;
            clock = Instant::now();
        };
        let decoded = (0..batch).map(|_| preprocess::decode(image)).collect::<Result<Vec<_>, _>>()?;
        lap(&mut t[0]);
        let pixels: Vec<_> = decoded.iter().map(|img| clip.prepare_rgb(img)).collect();
        lap(&mut t[1]);
        let embeds = clip.image_embeddings(&pixels)?;
        pollster::block_on(Clip::rows(embeds.clone()))?;
        lap(&mut t[2]);
        pollster::block_on(Clip::rows(clip.text_embeddings(prompts)?))?;
        lap(&mut t[3]);
        let logits = pollster::block_on(Clip::rows(clip.logits(embeds, &labels)))?;
        std::hint::black_box(logits);
        lap(&mut t[4]);
        if run > 0 {
            out.push(t);
        }
    }
    Ok(BenchReport { batch, prompts: prompts.len(), runs: out })
}
