//! `salient spuriosity`: rank each class's images by how strongly its spurious features fire
//! (Moayeri et al., "Spuriosity Rankings", NeurIPS 2023), and the accuracy gap that opens. The
//! work is `salient_pipeline::spuriosity`.

use std::path::PathBuf;

use salient_pipeline::spuriosity::{SpuriosityParams, spuriosity};

use crate::error::Result;

/// Rank images by spuriosity and measure the accuracy gap between the most and least spurious.
///
/// Spuriosity of an image of class c = the mean, over c's spurious features, of the feature's
/// z-score among c's images (its folder). Reads the feature cache of a `salient discover` run
/// (no network is run) and the labels; per class, reports the model's accuracy on the --k most
/// and the --k least spurious images (k at most half the class) and their gap. Writes
/// spuriosity.csv, rankings/<wnid>.csv (images, most spurious first) and summary.json.
#[derive(clap::Args, Debug)]
pub struct SpuriosityArgs {
    /// A `salient discover` output folder (its feature cache).
    #[arg(long, value_name = "RUN")]
    run: PathBuf,

    /// Labels (the paper's MTurk CSV or a Salient CSV).
    #[arg(long, value_name = "FILE")]
    annotations: PathBuf,

    /// Images at each end of the ranking.
    #[arg(long, default_value_t = 100, value_name = "K")]
    k: usize,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: SpuriosityArgs) -> Result<()> {
    let params = SpuriosityParams { run: args.run, annotations: args.annotations, k: args.k, out: args.out };
    println!("{}", spuriosity(&params, &salient_pipeline::Quiet)?);
    Ok(())
}
