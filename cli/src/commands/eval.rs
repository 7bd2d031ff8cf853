//! `salient eval`: the paper's noise-sensitivity test of any classifier on a Salient dataset.

use std::path::PathBuf;

use salient_engine::annotations::Bounds;
use salient_pipeline::eval::{EngineClassifier, EvalOutput, EvalParams, evaluate};
use salient_pipeline::masks::MaskSet;

use crate::error::Result;
use crate::model::ModelArgs;
use crate::progress;

/// Measure how much a classifier relies on core vs spurious regions (the paper's noise test).
///
/// For each class, Gaussian noise (σ = --sigma) is added inside the soft masks of its core
/// features (the accuracy left is its *spurious accuracy*: what the model gets from elsewhere)
/// or of its spurious features (*core accuracy*), and per feature. Accuracies are per class,
/// aggregated class-balanced; --trials noise draws give a 95% confidence interval; --seed makes
/// the draws reproducible. RCS = (core − spurious)/(2·min(ā, 1−ā)), ā their mean. Writes the
/// paper's per-class CSVs (noise_in_core_features/std_<σ>.csv, ...), rcs_per_class.csv,
/// summary.json and core_vs_spurious.svg.
///
/// DATASET is a `salient build` output, or the paper's released Salient ImageNet (no
/// index.jsonl: then --annotations gives the labels). Masks are used as stored; --mask-quirk
/// reproduces the original loader, which resizes the 224×224 masks again (zooming them 8/7).
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The classifier to test: any torchvision/timm ResNet-family checkpoint the engine loads.
    #[command(flatten)]
    model: ModelArgs,

    /// The dataset folder.
    #[arg(long, value_name = "DATASET")]
    dataset: PathBuf,

    /// The images, ImageNet layout (the folder the dataset was built from).
    #[arg(long, value_name = "ROOT")]
    images: PathBuf,

    /// Labels, when DATASET is the paper's release (which has no index.jsonl).
    #[arg(long, value_name = "FILE")]
    annotations: Option<PathBuf>,

    /// Noise standard deviation, in [0, 1] pixel units.
    #[arg(long, default_value_t = 0.25, value_name = "S")]
    sigma: f32,

    /// Independent noise draws.
    #[arg(long, default_value_t = 3, value_name = "N")]
    trials: u32,

    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Resize the stored 224×224 masks through Resize(256)+CenterCrop(224), as the original code did.
    #[arg(long)]
    mask_quirk: bool,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,

    /// Continue a stopped evaluation.
    #[arg(long)]
    resume: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    batch_size: usize,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let engine = args.model.engine()?;
    let params = EvalParams {
        sigma: args.sigma,
        trials: args.trials,
        seed: args.seed,
        mask_quirk: args.mask_quirk,
        batch_size: args.batch_size,
        view: engine.view,
    };
    params.check()?;
    let bounds = Bounds { classes: engine.config.num_classes, features: usize::MAX };
    let masks = MaskSet::open(&args.dataset, args.annotations.as_deref(), bounds)?;
    let output = EvalOutput {
        dir: &args.out,
        resume: args.resume,
        model: args.model.fingerprint()?,
        annotations: args.annotations.as_deref(),
    };
    let report = evaluate(
        &masks,
        &args.images,
        &mut EngineClassifier(&engine),
        &params,
        Some(&engine.class_names),
        Some(&output),
        &progress::Bar::new(false),
    )?;
    println!("{}", report.summary_json().trim_end());
    Ok(())
}
