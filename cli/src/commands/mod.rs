//! One module per subcommand, plus the batching loop they share.

pub mod attack;
pub mod bench;
pub mod build;
pub mod convert;
pub mod discover;
pub mod eval;
pub mod explain;
pub mod fetch;
pub mod labels;
pub mod mask;
pub mod merge;
pub mod predict;
pub mod rank;
pub mod serve;
pub mod site;
pub mod spuriosity;
pub mod synth;

use std::path::{Path, PathBuf};

use image::RgbImage;
use indicatif::ProgressBar;
use salient_engine::{Engine, ImageOutput};

use crate::error::{Error, Result};
use salient_pipeline::batches;

/// Runs the model over `paths` and hands each image's path, 224×224 view and outputs to
/// `each`. An image that cannot be read is reported and skipped, never fatal; with a single
/// input, its error is the result.
pub fn for_each_output(
    engine: &Engine,
    paths: &[PathBuf],
    batch_size: usize,
    keep_maps: bool,
    bar: &ProgressBar,
    mut each: impl FnMut(&Path, &RgbImage, &ImageOutput) -> Result<()>,
) -> Result<()> {
    let mut failed = 0;
    batches::run(engine, paths, batch_size, keep_maps, |i, outcome| {
        bar.inc(1);
        match outcome {
            Ok((view, out)) => each(&paths[i], view, out),
            Err(e) if paths.len() == 1 => Err(e.into()),
            Err(e) => {
                bar.suspend(|| eprintln!("error: {}", salient_engine::fsutil::escape(&e.to_string())));
                failed += 1;
                Ok(())
            }
        }
    })?;
    bar.finish_and_clear();
    match failed {
        0 => Ok(()),
        failed => Err(Error::SomeFailed { failed, total: paths.len() }),
    }
}
