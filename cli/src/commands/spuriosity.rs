//! `salient spuriosity`: rank each class's images by how strongly its spurious features fire
//! (Moayeri et al., "Spuriosity Rankings", NeurIPS 2023), and the accuracy gap that opens.

use std::path::PathBuf;

use salient_engine::annotations::{Bounds, Label};
use salient_engine::imagenet::class_name;
use salient_engine::table;
use serde_json::json;

use crate::error::{Error, Result};
use salient_pipeline::files::write;

use super::discover::{Cached, cached_classes};

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
    if args.k == 0 {
        return Err(Error::Usage("--k must be at least 1".into()));
    }
    let classes: Vec<Cached> = cached_classes(&args.run)?;
    let (num_classes, features) = classes.first().map_or((0, 0), |c| (c.classes, c.features));
    let annotations = salient_pipeline::files::load_annotations(&args.annotations, Bounds { classes: num_classes, features })?;
    let by_class = annotations.by_class();
    let mut rows = Vec::new();
    let mut gaps = Vec::new();
    for class in &classes {
        let label = class.images.first().map(|i| i.label);
        let Some(pairs) = label.and_then(|l| by_class.get(&l)) else { continue };
        let spurious: Vec<usize> = pairs.iter().filter(|p| p.label == Label::Spurious).map(|p| p.feature).collect();
        let n = class.images.len();
        if spurious.is_empty() || n < 2 {
            continue;
        }
        let c = label.expect("checked");
        // z-score of each spurious feature over the class's images, averaged.
        let mut score = vec![0f64; n];
        for &j in &spurious {
            let a: Vec<f64> = (0..n).map(|i| f64::from(class.data[i * features + j])).collect();
            let mean = a.iter().sum::<f64>() / n as f64;
            let std = (a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            for (s, v) in score.iter_mut().zip(&a) {
                *s += if std > 0.0 { (v - mean) / std } else { 0.0 } / spurious.len() as f64;
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            score[b].total_cmp(&score[a]).then_with(|| class.images[a].image.cmp(&class.images[b].image))
        });
        let k = args.k.min(n / 2);
        let acc = |idx: &[usize]| idx.iter().filter(|&&i| class.images[i].pred == c).count() as f64 / idx.len() as f64;
        let (high, low) = (acc(&order[..k]), acc(&order[n - k..]));
        gaps.push(high - low);
        rows.push(vec![
            c.to_string(),
            class_name(num_classes, c),
            n.to_string(),
            k.to_string(),
            format!("{:.3}", high * 100.0),
            format!("{:.3}", low * 100.0),
            format!("{:.3}", (high - low) * 100.0),
        ]);
        let ranking = table::csv(
            &["image", "spuriosity"],
            order.iter().map(|&i| [class.images[i].image.clone(), format!("{:.6}", score[i])]),
        );
        write(&args.out.join("rankings").join(format!("{}.csv", class.wnid)), ranking.as_bytes())?;
    }
    if gaps.is_empty() {
        return Err(Error::Usage(format!(
            "no class of {} has spurious features in {}",
            args.run.display(),
            args.annotations.display()
        )));
    }
    let header =
        ["class_index", "class_name", "images", "k", "accuracy_most_spurious", "accuracy_least_spurious", "gap"];
    write(&args.out.join("spuriosity.csv"), table::csv(&header, rows).as_bytes())?;
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let summary = json!({ "classes": gaps.len(), "k": args.k, "mean_gap": mean_gap });
    let text = serde_json::to_string_pretty(&summary).expect("plain data") + "\n";
    write(&args.out.join("summary.json"), text.as_bytes())?;
    println!(
        "{} classes: the {} most spurious images of a class are classified {:+.1} points more accurately than the least spurious, on average",
        gaps.len(),
        args.k,
        mean_gap * 100.0
    );
    Ok(())
}
