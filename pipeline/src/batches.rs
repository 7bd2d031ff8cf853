//! Running the model over many images. Decoding and preprocessing (in parallel) run on a
//! background thread one batch ahead of inference, so the model never waits for JPEGs.

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use image::RgbImage;
use salient_engine::{Engine, ImageOutput};

use crate::error::Error;
use crate::inputs::load_views;

/// What one image gave: its view and the model's outputs, or why it could not be read.
pub type Outcome<'a> = std::result::Result<(&'a RgbImage, &'a ImageOutput), salient_engine::Error>;

/// Calls `each(i, outcome)` for every path, in order. An image that cannot be read is passed
/// as its error; an error from `each` or from the model stops the run.
pub fn run<E: From<Error>>(
    engine: &Engine,
    paths: &[PathBuf],
    batch_size: usize,
    keep_maps: bool,
    mut each: impl FnMut(usize, Outcome<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let batch = batch_size.max(1);
    let view = engine.view;
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(1);
        scope.spawn(move || {
            for (k, chunk) in paths.chunks(batch).enumerate() {
                // A send fails only when the consumer stopped early: stop too.
                if tx.send((k * batch, load_views(chunk, view))).is_err() {
                    break;
                }
            }
        });
        for (start, views) in rx {
            let mut ok = Vec::with_capacity(views.len());
            let mut slots = Vec::with_capacity(views.len());
            for view in views {
                slots.push(match view {
                    Ok(v) => {
                        ok.push(v);
                        Ok(ok.len() - 1)
                    }
                    Err(e) => Err(e),
                });
            }
            let outputs = engine.infer(&ok, keep_maps).map_err(|e| E::from(Error::from(e)))?;
            for (i, slot) in slots.into_iter().enumerate() {
                each(start + i, slot.map(|j| (&ok[j], &outputs[j])))?;
            }
        }
        Ok(())
    })
}
