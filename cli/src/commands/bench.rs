//! `salient bench`: how fast this build runs the method's batch work on this machine.

use std::time::Instant;

use image::RgbImage;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use salient_engine::attack::AttackOptions;
use serde::Serialize;

use crate::error::Result;
use crate::model::ModelArgs;

/// Measure features + masks throughput (and the feature attack) on this machine.
///
/// Runs the model on seeded random images of its input size: per batch, one forward pass with
/// the layer4 maps read back, then for every image the soft mask of its predicted class's top-5
/// features (what `build` and the explorer do per image). Several timed runs after a warm-up;
/// the median is reported, with peak memory (VmHWM). `tools/bench_cpu.py` runs the same work in
/// ONNX Runtime on the same weights and prints both side by side.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// Batch sizes to measure, comma-separated.
    #[arg(long, default_value = "1,16", value_delimiter = ',')]
    batch: Vec<usize>,

    /// Timed runs per batch size (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,

    /// Batches per run.
    #[arg(long, default_value_t = 2)]
    batches: usize,

    /// Feature-attack steps to time on one image (0: skip).
    #[arg(long, default_value_t = 5)]
    attack_steps: usize,

    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct BatchFigure {
    batch: usize,
    images_per_second: f64,
    runs: Vec<f64>,
}

#[derive(Serialize)]
struct Figures {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    schema: u32,
    model: String,
    backend: String,
    /// The engine's own CPU convolution kernels in use (`avx512`), if any.
    cpu_kernels: Option<String>,
    threads: usize,
    batches: Vec<BatchFigure>,
    attack_seconds_per_step: Option<f64>,
    /// What the first attack takes beyond its step (building the gradient network).
    attack_setup_seconds: Option<f64>,
    peak_rss_mb: Option<f64>,
}

/// Peak resident memory of this process, from /proc (Linux).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: BenchArgs) -> Result<()> {
    let engine = args.model.engine()?;
    let side = engine.view.side() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut image = || {
        let mut img = RgbImage::new(side, side);
        for p in img.pixels_mut() {
            p.0 = [rng.random(), rng.random(), rng.random()];
        }
        img
    };
    let mut figures = Vec::new();
    for &batch in &args.batch {
        let views: Vec<RgbImage> = (0..batch.max(1)).map(|_| image()).collect();
        let work = || -> Result<()> {
            for _ in 0..args.batches {
                let outputs = engine.infer(&views, true)?;
                for out in &outputs {
                    let features: Vec<usize> = engine.explain(out, 5).features.into_iter().map(|(j, _)| j).collect();
                    let mask = out.maps.as_ref().expect("maps kept").soft_mask(&features, side as usize);
                    std::hint::black_box(mask);
                }
            }
            Ok(())
        };
        work()?;
        let mut runs = Vec::new();
        for _ in 0..args.runs.max(1) {
            let t = Instant::now();
            work()?;
            runs.push((batch * args.batches) as f64 / t.elapsed().as_secs_f64());
        }
        let images_per_second = median(&mut runs.clone());
        if !args.json {
            eprintln!("batch {batch:>3}: {images_per_second:.2} images/s (runs: {runs:.2?})");
        }
        figures.push(BatchFigure { batch, images_per_second, runs });
    }
    // The first attack builds the gradient network (the CPU kernels' transposed weights), which
    // later attacks reuse: timed apart from the steps.
    let attack = (args.attack_steps > 0).then(|| {
        let x = engine.batch(&[image()]);
        let timed = |steps: usize| {
            let t = Instant::now();
            let out = engine.attack(x.clone(), 0, AttackOptions { steps, step_size: 10.0 }, |_| {});
            std::hint::black_box(out.after.into_data());
            t.elapsed().as_secs_f64()
        };
        let first = timed(1);
        let per_step = timed(args.attack_steps) / args.attack_steps as f64;
        (per_step, (first - per_step).max(0.0))
    });
    let figures = Figures {
        schema: salient_pipeline::SCHEMA,
        model: salient_engine::engine::describe(&engine.config),
        backend: args.model.backend.to_string(),
        cpu_kernels: engine.cpu_kernels().map(|isa| isa.name().to_owned()),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        batches: figures,
        attack_seconds_per_step: attack.map(|a| a.0),
        attack_setup_seconds: attack.map(|a| a.1),
        peak_rss_mb: peak_rss_mb(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures).expect("plain data"));
    } else {
        if let (Some(s), Some(setup)) = (figures.attack_seconds_per_step, figures.attack_setup_seconds) {
            println!(
                "feature attack: {s:.3} s per step ({:.1} s for the default 100 steps) after {setup:.2} s of setup",
                s * 100.0
            );
        }
        let kernels = figures.cpu_kernels.as_ref().map_or(String::new(), |k| format!(" ({k} kernels)"));
        for b in &figures.batches {
            println!(
                "{} · {}{kernels} · batch {}: {:.2} images/s (features + masks)",
                figures.model, figures.backend, b.batch, b.images_per_second
            );
        }
        if let Some(m) = figures.peak_rss_mb {
            println!("peak memory: {m:.0} MB");
        }
    }
    Ok(())
}
