//! `salient spuriosity`: rank each class's images by how strongly its spurious features fire
//! (Moayeri et al., "Spuriosity Rankings", NeurIPS 2023), and the accuracy gap that opens. The
//! work is `salient_pipeline::spuriosity`.

use std::path::PathBuf;

use salient_engine::Backend;
use salient_engine::preprocess::View;
use salient_pipeline::eval::{Classify, EngineClassifier};
use salient_pipeline::spuriosity::{SpuriosityParams, spuriosity};

use crate::error::Result;

/// Rank images by spuriosity and measure the accuracy gap between the most and least spurious.
///
/// Spuriosity of an image of class c = the mean, over c's spurious features, of the feature's
/// z-score among c's images (its folder), from the feature cache of a `salient discover` run
/// (the robust model's features; no network is run for the ranking). Run discover on the split
/// to measure — the validation set, as Moayeri et al. do. The accuracy is that of --model (any
/// checkpoint the CLI loads; from Python, any classifier), or without it the discover run's own
/// model. The spurious gap is the accuracy on the --k most spurious images of every class,
/// pooled, minus that on the --k least spurious (k = 100, at most half a class); the per-class
/// gaps are in spuriosity.csv. Writes spuriosity.csv, rankings/<wnid>.csv (images, most spurious
/// first) and summary.json.
#[derive(clap::Args, Debug)]
pub struct SpuriosityArgs {
    /// A `salient discover` output folder (its feature cache).
    #[arg(long, value_name = "RUN")]
    run: PathBuf,

    /// Labels (the paper's MTurk CSV or a Salient CSV).
    #[arg(long, value_name = "FILE")]
    annotations: PathBuf,

    /// Images at each end of each class's ranking.
    #[arg(long, default_value_t = 100, value_name = "K")]
    k: usize,

    /// The classifier whose accuracy is measured: any checkpoint the CLI loads (default: the
    /// discover run's model, whose predictions its cache holds).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,

    /// Compute backend for --model.
    #[arg(long, value_name = "NAME", default_value = "auto")]
    backend: Backend,

    /// Images per forward pass of --model.
    #[arg(long, default_value_t = 32, value_name = "N")]
    batch_size: usize,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: SpuriosityArgs) -> Result<()> {
    let engine = args.model.as_deref().map(|m| salient_pipeline::model::load(Some(m), args.backend)).transpose()?;
    let params = SpuriosityParams {
        run: args.run,
        annotations: args.annotations,
        k: args.k,
        out: args.out,
        model: args.model.as_deref().map(salient_engine::fsutil::shown),
        view: engine.as_ref().map_or(View::IMAGENET, |e| e.view),
        batch_size: args.batch_size,
    };
    let mut classifier = engine.as_ref().map(EngineClassifier);
    let summary =
        spuriosity(&params, classifier.as_mut().map(|c| c as &mut dyn Classify), &crate::progress::Bar::new(false))?;
    println!("{summary}");
    Ok(())
}
