//! `salient rank`: a class's most important neural features over a set of images.

use std::io::Write;
use std::path::PathBuf;

use salient_engine::importance::{MeanFeatures, top_k};
use serde::Serialize;

use crate::error::Result;
use crate::model::{ModelArgs, check_class};
use crate::progress;
use salient_pipeline::inputs::expand;

/// Rank a class's neural features by importance over the given images.
///
/// Importance of feature j for class c is mean over the images of r_j(x)·W[c,j] (activation
/// times classifier weight, bias excluded), all images counted as members of class c. The
/// paper ranks over the training images the robust model predicts as c and keeps the top 5.
#[derive(clap::Args, Debug)]
pub struct RankArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// The class (0–999 for ImageNet).
    #[arg(long, short = 'c', value_name = "C")]
    class: usize,

    /// How many features to report.
    #[arg(long, default_value_t = 5, value_name = "K")]
    top: usize,

    /// Print {"class": C, "top": [{"feature", "importance"}]} (and no progress bar).
    #[arg(long)]
    json: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 16, value_name = "N")]
    batch_size: usize,

    /// Images, or folders searched recursively for them (e.g. train/n02281406).
    #[arg(required = true, value_name = "IMAGE_OR_DIR")]
    inputs: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Ranked {
    feature: usize,
    importance: f32,
}

#[derive(Serialize)]
struct Ranking {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    schema: u32,
    class: usize,
    top: Vec<Ranked>,
}

pub fn run(args: RankArgs) -> Result<()> {
    let engine = args.model.engine()?;
    check_class(&engine, args.class)?;
    let paths = expand(&args.inputs)?;
    let bar = progress::bar(paths.len() as u64, "images", args.json);
    let mut mean = MeanFeatures::default();
    let result = super::for_each_output(&engine, &paths, args.batch_size, false, &bar, |_, _, o| {
        mean.add(&o.features);
        Ok(())
    });
    // Rank whatever could be read, then report failures.
    if mean.count() > 0 {
        let fi = mean.importance(engine.class_weights(args.class));
        let top: Vec<Ranked> =
            top_k(&fi, args.top).into_iter().map(|(feature, importance)| Ranked { feature, importance }).collect();
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&Ranking { schema: salient_pipeline::SCHEMA, class: args.class, top })
                    .expect("plain data")
            )?;
        } else {
            let label = engine.class_label(args.class);
            writeln!(out, "{label}: top {} features over {} images", top.len(), mean.count())?;
            writeln!(out, "  rank  feature   importance")?;
            for (i, r) in top.iter().enumerate() {
                writeln!(out, "  {:>4}  {:>7}  {:>11.5}", i + 1, r.feature, r.importance)?;
            }
        }
    }
    result
}
