//! One module per subcommand, plus the batching loop they share.

pub mod attack;
pub mod convert;
pub mod explain;
pub mod fetch;
pub mod mask;
pub mod predict;
pub mod rank;

use std::path::{Path, PathBuf};

use image::RgbImage;
use indicatif::ProgressBar;
use salient_engine::{Engine, ImageOutput};

use crate::error::{Error, Result};
use crate::inputs::load_views;

/// Runs the model over `paths` in batches (images decoded in parallel) and hands each image's
/// path, 224×224 view and outputs to `each`. An image that cannot
/// be read is reported and skipped, never fatal; with a single input, its error is the result.
pub fn for_each_output(
    engine: &Engine,
    paths: &[PathBuf],
    batch_size: usize,
    keep_maps: bool,
    bar: &ProgressBar,
    mut each: impl FnMut(&Path, &RgbImage, &ImageOutput) -> Result<()>,
) -> Result<()> {
    let mut failures = Vec::new();
    for chunk in paths.chunks(batch_size.max(1)) {
        let mut views = Vec::with_capacity(chunk.len());
        let mut ok = Vec::with_capacity(chunk.len());
        for (path, view) in chunk.iter().zip(load_views(chunk)) {
            match view {
                Ok(v) => {
                    views.push(v);
                    ok.push(path);
                }
                Err(e) if paths.len() == 1 => return Err(e.into()),
                Err(e) => {
                    bar.suspend(|| eprintln!("error: {e}"));
                    failures.push(e);
                }
            }
        }
        for ((path, view), out) in ok.into_iter().zip(&views).zip(engine.infer(&views, keep_maps)?) {
            each(path, view, &out)?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    match failures.len() {
        0 => Ok(()),
        failed => Err(Error::SomeFailed { failed, total: paths.len() }),
    }
}
