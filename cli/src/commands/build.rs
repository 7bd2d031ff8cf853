//! `salient build`: the Salient ImageNet dataset — soft masks for every annotated
//! (class, feature) pair, in the paper's layout plus lossless PNGs and an index. The work is
//! `salient_pipeline::build`.

use std::path::PathBuf;

use salient_pipeline::build::{BuildParams, build};
use salient_pipeline::folder::parse_class_list;
use salient_pipeline::shard::Shard;

use crate::error::{Error, Result};
use crate::model::ModelArgs;
use crate::progress;

/// Build the Salient ImageNet dataset from annotations.
///
/// For each annotated (class, feature) pair, ranks the class's images (its folder under
/// --images) by the feature's activation and writes the top --per-feature images' soft masks:
/// the paper's layout (wordnet_dict.py, <wnid>/image_names_map.csv,
/// <wnid>/feature_<j>/<image>.JPEG, so existing loaders work unchanged), the same masks as
/// lossless PNGs, and index.jsonl (class, feature, label, image, activation, mask, SHA-256)
/// for `salient eval` and the explorer. One pass over the images; every file is written
/// atomically; a run stopped at any point (even by kill -9) continues with --resume and ends
/// byte-identical to an uninterrupted one. Images that cannot be read are listed, with the
/// reason, in skipped.jsonl.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// ImageNet-layout folder: ROOT/<wnid>/<image>.JPEG (usually imagenet/train).
    #[arg(long, value_name = "ROOT")]
    pub images: PathBuf,

    /// Labels: the paper's discover_spurious_features.csv, or a Salient CSV (class,feature,label).
    #[arg(long, value_name = "FILE")]
    pub annotations: PathBuf,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "DATASET")]
    pub out: PathBuf,

    /// Images per (class, feature) pair.
    #[arg(long, default_value_t = 65, value_name = "N")]
    pub per_feature: usize,

    /// Only these classes: comma-separated WordNet ids or indices, or @FILE.
    #[arg(long, value_name = "LIST")]
    pub classes: Option<String>,

    /// Do share I of N of the classes (see also $SLURM_ARRAY_TASK_ID, $JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Continue a run stopped part-way (the output folder must hold the same job).
    #[arg(long)]
    pub resume: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch_size: usize,
}

pub fn run(args: BuildArgs) -> Result<()> {
    if args.per_feature == 0 {
        return Err(Error::Usage("--per-feature must be at least 1".into()));
    }
    let shard = Shard::resolve(args.shard.as_deref())?;
    let engine = args.model.engine()?;
    let params = BuildParams {
        model: args.model.fingerprint()?,
        images: args.images,
        annotations: args.annotations,
        out: args.out,
        per_feature: args.per_feature,
        classes: args.classes.as_deref().map(parse_class_list).transpose()?,
        shard,
        resume: args.resume,
        batch_size: args.batch_size,
    };
    println!("{}", build(&engine, &params, &progress::Bar::new(false))?);
    Ok(())
}
