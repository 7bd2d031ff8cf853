//! Spuriosity rankings (Moayeri et al., NeurIPS 2023; `salient spuriosity`): each class's
//! images ranked by how strongly its spurious features fire, and the accuracy gap between the
//! most and the least spurious. Reads a discover run's feature cache; runs no network.

use std::fmt;
use std::path::{Path, PathBuf};

use salient_engine::annotations::{Bounds, Label};
use salient_engine::imagenet::class_name;
use salient_engine::{fsutil, table};
use serde::{Deserialize, Serialize};

use crate::discover::{Cached, cached_classes};
use crate::error::{Error, Result};
use crate::files::{load_annotations_reporting, write};
use crate::progress::Progress;

/// The report's `summary.json`.
pub const SUMMARY_FILE: &str = "summary.json";

#[derive(Debug, Clone)]
pub struct SpuriosityParams {
    /// A discover run (its feature cache).
    pub run: PathBuf,
    /// Labels (the paper's MTurk CSV or a Salient CSV).
    pub annotations: PathBuf,
    /// Images at each end of the ranking (at most half a class); at least 1.
    pub k: usize,
    /// Output folder.
    pub out: PathBuf,
}

/// [`SUMMARY_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpuriositySummary {
    /// Version of this output's layout ([`crate::SCHEMA`]).
    #[serde(default = "crate::schema")]
    pub schema: u32,
    /// Classes with spurious features.
    pub classes: usize,
    pub k: usize,
    /// Mean over the classes of accuracy (most spurious) − accuracy (least spurious).
    pub mean_gap: f64,
}

impl SpuriositySummary {
    pub fn text(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data") + "\n"
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(SUMMARY_FILE);
        serde_json::from_str(&fsutil::read_text(&path)?)
            .map_err(|e| Error::Data(format!("{}: not a spuriosity summary ({e})", fsutil::shown(&path))))
    }
}

impl fmt::Display for SpuriositySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} classes: the {} most spurious images of a class are classified {:+.1} points more accurately than the least spurious, on average",
            self.classes,
            self.k,
            self.mean_gap * 100.0
        )
    }
}

/// Ranks, measures and writes `spuriosity.csv`, `rankings/<wnid>.csv` (images, most spurious
/// first) and [`SUMMARY_FILE`].
pub fn spuriosity(params: &SpuriosityParams, progress: &dyn Progress) -> Result<SpuriositySummary> {
    let p = params;
    if p.k == 0 {
        return Err(Error::Usage("--k must be at least 1".into()));
    }
    let classes: Vec<Cached> = cached_classes(&p.run)?;
    let (num_classes, features) = classes.first().map_or((0, 0), |c| (c.classes, c.features));
    let annotations = load_annotations_reporting(&p.annotations, Bounds { classes: num_classes, features }, progress)?;
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
        let k = p.k.min(n / 2);
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
        write(&p.out.join("rankings").join(format!("{}.csv", class.wnid)), ranking.as_bytes())?;
    }
    if gaps.is_empty() {
        return Err(Error::Data(format!(
            "no class of {} has spurious features in {}",
            p.run.display(),
            p.annotations.display()
        )));
    }
    let header =
        ["class_index", "class_name", "images", "k", "accuracy_most_spurious", "accuracy_least_spurious", "gap"];
    write(&p.out.join("spuriosity.csv"), table::csv(&header, rows).as_bytes())?;
    let summary = SpuriositySummary {
        schema: crate::SCHEMA,
        classes: gaps.len(),
        k: p.k,
        mean_gap: gaps.iter().sum::<f64>() / gaps.len() as f64,
    };
    write(&p.out.join(SUMMARY_FILE), summary.text().as_bytes())?;
    Ok(summary)
}
