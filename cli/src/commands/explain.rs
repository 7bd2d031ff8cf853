//! `salient explain`: which neural features drive each image's prediction, and where they look.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage};
use salient_engine::{colormap, nam};
use serde::Serialize;

use crate::error::Result;
use crate::model::ModelArgs;
use crate::output::save_png;
use crate::progress;
use salient_pipeline::inputs::expand;

/// Show the features behind each image's prediction, with their heatmaps.
///
/// For the predicted class c of an image x, ranks features by r_j(x)·W[c,j] (the per-image
/// form of the method's feature importance) and writes, for each of the top ones, its soft
/// mask and heatmap overlay into --out as <image>_f<feature>_mask.png and _heatmap.png.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// How many features per image.
    #[arg(long, default_value_t = 5, value_name = "K")]
    top: usize,

    /// Folder for the masks and heatmaps (created if needed).
    #[arg(long, short = 'o', default_value = "salient-explain", value_name = "DIR")]
    out: PathBuf,

    /// One JSON object per image instead of a table.
    #[arg(long)]
    json: bool,

    /// Images, or folders searched recursively for them.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Feature {
    feature: usize,
    importance: f32,
    mask: String,
    heatmap: String,
}

#[derive(Serialize)]
struct Explanation {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    schema: u32,
    image: String,
    class: usize,
    name: String,
    prob: f32,
    features: Vec<Feature>,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let engine = args.model.engine()?;
    let paths = expand(&args.images)?;
    std::fs::create_dir_all(&args.out).map_err(|e| salient_engine::Error::write(&args.out, e))?;
    let bar = progress::bar(paths.len() as u64, "images", args.json);
    let mut out = std::io::stdout().lock();
    let size = engine.view.crop;
    super::for_each_output(&engine, &paths, 4, true, &bar, |path, view, o| {
        let explained = engine.explain(o, args.top);
        let (class, prob) = (explained.class, explained.prob);
        let maps = o.maps.as_ref().expect("maps were asked for");
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let mut features = Vec::new();
        for (feature, importance) in explained.features {
            let mask = maps.soft_mask(&[feature], size as usize);
            let file = |kind: &str| args.out.join(format!("{stem}_f{feature}_{kind}.png"));
            let gray = GrayImage::from_raw(size, size, nam::to_gray(&mask)).expect("sized mask");
            save_png(&DynamicImage::ImageLuma8(gray), &file("mask"))?;
            save_png(&DynamicImage::ImageRgb8(colormap::overlay(view, &mask)), &file("heatmap"))?;
            features.push(Feature {
                feature,
                importance,
                mask: shown(&file("mask")),
                heatmap: shown(&file("heatmap")),
            });
        }
        let name = engine.class_name(class);
        let e = Explanation { schema: salient_pipeline::SCHEMA, image: shown(path), class, name, prob, features };
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&e).expect("plain data"))?;
        } else {
            bar.suspend(|| -> Result<()> {
                let label = engine.class_label(e.class);
                writeln!(out, "{}: {label}, {:.1}%", e.image, e.prob * 100.0)?;
                writeln!(out, "  feature  importance  heatmap")?;
                for f in &e.features {
                    writeln!(out, "  {:>7}  {:>10.4}  {}", f.feature, f.importance, f.heatmap)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}
