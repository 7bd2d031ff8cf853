//! `salient synth`: the ground-truth benchmark. A generated dataset with planted spurious cues,
//! small models trained on it (robust and plain), and a score of how well the pipeline finds
//! the planted cues. The work is the `salient-synth` crate's.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use salient_synth::generate::{Plan, generate};
use salient_synth::score::{ScoreParams, score};
use salient_synth::train::{TrainParams, report_path, train_model};

use crate::error::Result;
use crate::progress;

/// The synthetic benchmark with planted spurious features.
///
/// Ten classes of shapes (circle, square, …); five cues (diagonal stripes, a watermark glyph, a
/// checkered ball, polka dots, a hazard bar) each planted in one class's training images at a
/// set rate (0.9, 0.85, 0.8, 0.6, 0.4) and drawn independently of the class in the test split.
/// Every image ships its ground-truth regions, so discovery can be scored.
///
///   salient synth generate -o bench/                       # the images and ground truth
///   salient synth train --data bench/ -o robust.safetensors            # L2 PGD, ε = 1
///   salient synth train --data bench/ --epsilon 0 -o plain.safetensors # the baseline
///   salient synth score --data bench/ --robust robust.safetensors --plain plain.safetensors -o run/
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SynthArgs {
    #[command(subcommand)]
    command: SynthCommand,
}

#[derive(Subcommand, Debug)]
enum SynthCommand {
    Generate(GenerateArgs),
    Train(TrainArgs),
    Score(ScoreArgs),
}

pub fn run(args: SynthArgs) -> Result<()> {
    match args.command {
        SynthCommand::Generate(a) => run_generate(a),
        SynthCommand::Train(a) => run_train(a),
        SynthCommand::Score(a) => run_score(a),
    }
}

/// Writes the benchmark: DIR/train/<wnid>/*.png, DIR/test/<wnid>/*.png (the ImageNet
/// layout), DIR/ground_truth/… (one region PNG per image), DIR/ground_truth.jsonl (the cues
/// in each image) and DIR/manifest.json (what is planted where). The same seed gives the
/// same bytes.
#[derive(Args, Debug)]
struct GenerateArgs {
    /// Output folder.
    #[arg(short, long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training images per class.
    #[arg(long, default_value_t = 200)]
    train_per_class: usize,
    /// Test images per class.
    #[arg(long, default_value_t = 50)]
    test_per_class: usize,
}

fn run_generate(a: GenerateArgs) -> Result<()> {
    let plan = Plan::new(a.seed, a.train_per_class, a.test_per_class);
    let total = (a.train_per_class + a.test_per_class) * salient_synth::scene::SHAPES.len();
    let manifest = generate(&plan, &a.out, &progress::Bar::new(false))?;
    println!("wrote {total} images of {} classes to {}", manifest.classes.len(), a.out.display());
    for c in &manifest.classes {
        match &c.cue {
            Some(cue) => {
                println!("  {:<12} cue {cue:<10} in {:.0}% of its training images", c.wnid, c.train_rate * 100.0)
            }
            None => println!("  {:<12} no planted cue", c.wnid),
        }
    }
    println!(
        "every cue also appears in {:.0}% of other classes' training images and in {:.0}% of all test images",
        plan.base_rate * 100.0,
        plan.test_rate * 100.0
    );
    Ok(())
}

/// Trains a small ResNet (the same model code as ResNet-50: basic blocks [1, 1, 1, 1], a compact
/// stem, 7×7 layer4 maps on the 112×112 images) on the benchmark's training split, with L2 PGD
/// adversarial training as the robustness library does (`--epsilon 0`: plain training). Writes
/// safetensors with the class names and input view in its metadata, and next to it a JSON
/// report: the options, the time taken, and test accuracy with and without each planted cue.
#[derive(Args, Debug)]
struct TrainArgs {
    /// The benchmark (from `salient synth generate`).
    #[arg(long)]
    data: PathBuf,
    /// Output weights (.safetensors); the report goes to the same path with .json.
    #[arg(short, long)]
    out: PathBuf,
    /// L2 radius of the PGD perturbation, pixels in [0, 1]; 0 trains plainly.
    #[arg(long, default_value_t = 1.0)]
    epsilon: f32,
    /// PGD steps per batch.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// PGD step size [default: 2.5·ε/steps, the robustness library's rule].
    #[arg(long)]
    step_size: Option<f32>,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate (cosine decay to 0).
    #[arg(long, default_value_t = 5e-3)]
    lr: f64,
    /// Channels of the first stage (features: 8× this).
    #[arg(long, default_value_t = 8)]
    width: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute backend: auto, flex (CPU), wgpu or cuda (the GPU ones when this build includes
    /// them). auto: cuda if compiled in and an NVIDIA driver is loaded, else wgpu if compiled in,
    /// else flex.
    #[arg(long, value_name = "NAME", default_value = "auto")]
    backend: salient_engine::Backend,
}

fn run_train(a: TrainArgs) -> Result<()> {
    let params = TrainParams {
        data: a.data,
        out: a.out,
        epsilon: a.epsilon,
        steps: a.steps,
        step_size: a.step_size,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        width: a.width,
        seed: a.seed,
        backend: a.backend,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let bar = progress::Bar::new(false);
    let report = train_model(&params, &bar, |r| {
        bar.suspend(|| eprintln!("epoch {:>2}: loss {:.4}, train accuracy {:.1}%", r.epoch, r.loss, 100.0 * r.accuracy))
    })?;
    println!(
        "trained in {:.0} s; test accuracy {:.1}%; wrote {} and {}",
        report.seconds,
        100.0 * report.test_accuracy,
        params.out.display(),
        report_path(&params.out).display()
    );
    println!("test accuracy of each cue's class, on its test images with / without the cue:");
    for r in &report.cue_reliance {
        println!("  {:<12} {:<10} {:>5.1}% / {:>5.1}%", r.class, r.cue, 100.0 * r.with_cue, 100.0 * r.without_cue);
    }
    Ok(())
}

/// Runs discover → label → build → eval on the benchmark and scores the result.
///
/// discover ranks the robust model's features per class on the training split; each top
/// (class, feature) pair is labelled from ground truth, as a human would from its heatmaps: the
/// share of the feature's heatmap mass (where the mask is at least 0.5) on the object and on
/// each cue, over the pair's top images; spurious (and attributed to a cue) when a cue holds more mass than the object. build
/// then makes the soft masks on the test split, and eval runs the noise test on the robust and
/// the plain model. Reported: precision and recall of spurious-feature discovery against the
/// planted cues, IoU of the masks (thresholded at 0.5) with the ground-truth regions, core and
/// spurious accuracy and RCS for both models, and Spearman's ρ between the planted rates and
/// per-class RCS. Writes RUN/score.json; the pipeline's outputs stay in RUN/ for inspection.
#[derive(Args, Debug)]
struct ScoreArgs {
    /// The benchmark (from `salient synth generate`).
    #[arg(long)]
    data: PathBuf,
    /// The robust model: features are discovered with it and masks built from it.
    #[arg(long)]
    robust: PathBuf,
    /// A plain model, evaluated beside the robust one.
    #[arg(long)]
    plain: Option<PathBuf>,
    /// Output folder.
    #[arg(short, long)]
    out: PathBuf,
    /// Top images per pair used to assign its label.
    #[arg(long, default_value_t = 10)]
    label_images: usize,
    /// Masks built per (class, feature) pair on the test split.
    #[arg(long, default_value_t = 25)]
    per_feature: usize,
    /// Feature-attack steps of discover's annotation renders.
    #[arg(long, default_value_t = 20)]
    attack_steps: usize,
    /// Noise of the eval, in [0, 1] pixel units.
    #[arg(long, default_value_t = 0.25)]
    sigma: f32,
    #[arg(long, default_value_t = 3)]
    trials: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn run_score(a: ScoreArgs) -> Result<()> {
    let params = ScoreParams {
        data: a.data,
        robust: a.robust,
        plain: a.plain,
        out: a.out,
        label_images: a.label_images,
        per_feature: a.per_feature,
        attack_steps: a.attack_steps,
        sigma: a.sigma,
        trials: a.trials,
        seed: a.seed,
    };
    println!("{}", score(&params, &progress::Bar::new(false))?);
    Ok(())
}
