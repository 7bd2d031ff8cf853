//! `salient discover`: per-class feature importance over a dataset, the top features, their
//! top-activating images, and what a person needs to judge each (class, feature) pair. The
//! work is `salient_pipeline::discover`.

use std::path::PathBuf;

use clap::ValueEnum;
use salient_pipeline::discover::{DiscoverParams, Group, discover};
use salient_pipeline::folder::parse_class_list;
use salient_pipeline::shard::Shard;

use crate::error::Result;
use crate::model::ModelArgs;
use crate::progress;

/// Which images count as a class's: those the model predicts as it (the paper), or those in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupArg {
    Predicted,
    Label,
}

/// Find each class's most important neural features and their top images, for annotation.
///
/// One pass over an ImageNet-layout folder computes every image's 2048 features and the
/// model's prediction, kept in a compact cache (cache/<wnid>.f16) so that ranking again — other
/// --top, --group, --per-feature — never re-runs the network. Per class c (the images predicted
/// as c, or --group label: its folder), features are ranked by FI(c,j) = mean r_j(x)·W[c,j]; for
/// each of the top ones, its --per-feature highest-activating images are listed, and the first
/// --show are rendered with their heatmaps and feature-attack images into pairs/, as the
/// paper's annotators saw them. index.json lists it all. Missing or unreadable images are listed
/// in skipped.jsonl. With --shard, only the feature cache is computed: `salient merge` the
/// shards, then run discover --resume on the merged folder to rank.
#[derive(clap::Args, Debug)]
pub struct DiscoverArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// ImageNet-layout folder: ROOT/<wnid>/<image>.JPEG.
    #[arg(long, value_name = "ROOT")]
    images: PathBuf,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "RUN")]
    out: PathBuf,

    /// Only these class folders: comma-separated WordNet ids or indices, or @FILE.
    #[arg(long, value_name = "LIST")]
    classes: Option<String>,

    /// Features per class.
    #[arg(long, default_value_t = 5, value_name = "K")]
    top: usize,

    /// A class's images: those predicted as it (the paper's choice) or its folder's.
    #[arg(long, value_enum, default_value_t = GroupArg::Predicted)]
    group: GroupArg,

    /// Top-activating images listed per (class, feature).
    #[arg(long, default_value_t = 65, value_name = "N")]
    per_feature: usize,

    /// Images per pair rendered with heatmap and feature attack (the paper shows 5).
    #[arg(long, default_value_t = 5, value_name = "N")]
    show: usize,

    /// Feature-attack steps for the rendered images (0: no attack images).
    #[arg(long, default_value_t = 100, value_name = "N")]
    attack_steps: usize,

    /// Feature-attack step size.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    step_size: f32,

    /// Do share I of N of the class folders (feature cache only).
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,

    /// Continue a stopped run, or rank an existing cache again with other settings.
    #[arg(long)]
    resume: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    batch_size: usize,
}

pub fn run(args: DiscoverArgs) -> Result<()> {
    let shard = Shard::resolve(args.shard.as_deref())?;
    let engine = args.model.engine()?;
    let params = DiscoverParams {
        images: args.images,
        out: args.out,
        classes: args.classes.as_deref().map(parse_class_list).transpose()?,
        top: args.top,
        group: match args.group {
            GroupArg::Predicted => Group::Predicted,
            GroupArg::Label => Group::Label,
        },
        per_feature: args.per_feature,
        show: args.show,
        attack_steps: args.attack_steps,
        step_size: args.step_size,
        shard,
        resume: args.resume,
        batch_size: args.batch_size,
        model: args.model.fingerprint()?,
    };
    println!("{}", discover(&engine, &params, &progress::Bar::new(false))?);
    Ok(())
}
