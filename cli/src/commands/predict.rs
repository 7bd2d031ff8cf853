//! `salient predict`: top-5 classes, and with `--json` the logits and the neural features.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::model::ModelArgs;
use crate::progress;
use salient_pipeline::inputs::expand;

/// Classify images with the robust model.
///
/// Prints the five most probable classes of each image. With --json, prints one JSON object
/// per line: {"image", "top5": [{"class", "name", "prob"}], "logits": [...], "features": [...]},
/// the features being the 2048 neural features the Salient ImageNet method works with.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// One JSON object per image on standard output (and no progress bar).
    #[arg(long)]
    json: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 16, value_name = "N")]
    batch_size: usize,

    /// Images (JPEG, PNG, WebP), or folders searched recursively for them.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Serialize)]
struct ClassProb {
    class: usize,
    name: String,
    prob: f32,
}

#[derive(Serialize)]
struct Prediction<'a> {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    schema: u32,
    image: String,
    top5: Vec<ClassProb>,
    logits: &'a [f32],
    features: &'a [f32],
}

pub fn run(args: PredictArgs) -> Result<()> {
    let engine = args.model.engine()?;
    let paths = expand(&args.images)?;
    let bar = progress::bar(paths.len() as u64, "images", args.json);
    let mut out = std::io::stdout().lock();
    super::for_each_output(&engine, &paths, args.batch_size, false, &bar, |path, _, o| {
        let top5: Vec<ClassProb> = o
            .top(5)
            .into_iter()
            .map(|(class, prob)| ClassProb { class, name: engine.class_name(class), prob })
            .collect();
        if args.json {
            let p = Prediction {
                schema: salient_pipeline::SCHEMA,
                image: path.display().to_string(),
                top5,
                logits: &o.logits,
                features: &o.features,
            };
            writeln!(out, "{}", serde_json::to_string(&p).expect("plain data serializes"))?;
        } else {
            bar.suspend(|| -> Result<()> {
                writeln!(out, "{}", path.display())?;
                for c in &top5 {
                    writeln!(out, "  {:6.2}%  {}", c.prob * 100.0, engine.class_label(c.class))?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })
}
