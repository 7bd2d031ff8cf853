//! `salient merge`: join the outputs of a sharded `build` or `discover` into one. The work is
//! `salient_pipeline::merge`.

use std::path::PathBuf;

use salient_pipeline::merge::{MergeParams, merge};

use crate::error::Result;

/// Join shard outputs (`build` or `discover` run with --shard I/N) into one output.
///
/// Checks that the shards are the same job, that every shard of 0..N is there once and
/// finished, copies their files, and writes the joined index files exactly as an unsharded run
/// would: the result is byte-identical to running the whole job at once.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' output folders.
    #[arg(required = true, value_name = "SHARD_DIR")]
    shards: Vec<PathBuf>,

    /// The joined output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,

    /// Allow an output folder that already holds this same merge.
    #[arg(long)]
    resume: bool,
}

pub fn run(args: MergeArgs) -> Result<()> {
    println!("{}", merge(&MergeParams { shards: args.shards, out: args.out, resume: args.resume })?);
    Ok(())
}
