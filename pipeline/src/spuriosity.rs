//! Spuriosity rankings (Moayeri et al., NeurIPS 2023; `salient spuriosity`): each class's
//! images ranked by how strongly its spurious features fire, and the accuracy gap between the
//! most and the least spurious. Reads a discover run's feature cache; runs no network.

use std::fmt;
use std::path::{Path, PathBuf};

use salient_engine::annotations::{Bounds, Label};
use salient_engine::imagenet::class_name;
use salient_engine::preprocess::{View, push_chw};
use salient_engine::{decode, fsutil, table};
use serde::{Deserialize, Serialize};

use crate::discover::{Cached, cached_classes};
use crate::error::{Error, Result};
use crate::eval::Classify;
use crate::files::{load_annotations_reporting, write};
use crate::progress::Progress;

/// The report's `summary.json`.
pub const SUMMARY_FILE: &str = "summary.json";

#[derive(Debug, Clone)]
pub struct SpuriosityParams {
    /// A discover run (its feature cache): the split it was run on is the split measured.
    pub run: PathBuf,
    /// Labels (the paper's MTurk CSV or a Salient CSV).
    pub annotations: PathBuf,
    /// Images at each end of each class's ranking (at most half the class); at least 1.
    pub k: usize,
    /// Output folder.
    pub out: PathBuf,
    /// What the evaluated classifier is called in the summary (`None`: the discover run's own
    /// model, whose predictions the cache holds).
    pub model: Option<String>,
    /// The view of an image the evaluated classifier sees.
    pub view: View,
    /// Images per classifier call.
    pub batch_size: usize,
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
    /// The classifier whose accuracy is measured.
    #[serde(default)]
    pub model: String,
    /// Moayeri et al.'s spurious gap: accuracy on the k most spurious images of every class,
    /// pooled, minus accuracy on the k least spurious, pooled.
    #[serde(default)]
    pub gap: f64,
    #[serde(default)]
    pub accuracy_most_spurious: f64,
    #[serde(default)]
    pub accuracy_least_spurious: f64,
    /// Images in each pooled set.
    #[serde(default)]
    pub images_per_end: usize,
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
            "spurious gap of {}: {:+.1} points ({:.1}% on the {} most spurious images, {:.1}% on the {} least, \
             k = {} per class over {} classes); per class, {:+.1} points on average",
            self.model,
            self.gap * 100.0,
            self.accuracy_most_spurious * 100.0,
            self.images_per_end,
            self.accuracy_least_spurious * 100.0,
            self.images_per_end,
            self.k,
            self.classes,
            self.mean_gap * 100.0
        )
    }
}

/// One class's ranking.
struct Ranked<'a> {
    class: &'a Cached,
    label: usize,
    /// Image indices, most spurious first.
    order: Vec<usize>,
    score: Vec<f64>,
    k: usize,
}

/// Ranks, measures and writes `spuriosity.csv`, `rankings/<wnid>.csv` (images, most spurious
/// first) and [`SUMMARY_FILE`]. The accuracy is `classifier`'s, on the run's images (`None`: the
/// predictions of the discover run's model, from its cache).
pub fn spuriosity(
    params: &SpuriosityParams,
    mut classifier: Option<&mut dyn Classify>,
    progress: &dyn Progress,
) -> Result<SpuriositySummary> {
    let p = params;
    if p.k == 0 {
        return Err(Error::Usage("--k must be at least 1".into()));
    }
    let classes: Vec<Cached> = cached_classes(&p.run)?;
    let (num_classes, features) = classes.first().map_or((0, 0), |c| (c.classes, c.features));
    let annotations = load_annotations_reporting(&p.annotations, Bounds { classes: num_classes, features }, progress)?;
    let by_class = annotations.by_class();
    let mut ranked = Vec::new();
    for class in &classes {
        let label = class.images.first().map(|i| i.label);
        let Some(pairs) = label.and_then(|l| by_class.get(&l)) else { continue };
        let spurious: Vec<usize> = pairs.iter().filter(|p| p.label == Label::Spurious).map(|p| p.feature).collect();
        let n = class.images.len();
        if spurious.is_empty() || n < 2 {
            continue;
        }
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
        ranked.push(Ranked { class, label: label.expect("checked"), order, score, k: p.k.min(n / 2) });
    }
    if ranked.is_empty() {
        return Err(Error::Data(format!(
            "no class of {} has spurious features in {}",
            p.run.display(),
            p.annotations.display()
        )));
    }
    // Whether each image at either end is classified right, by the evaluated classifier.
    let images_root = match classifier {
        Some(_) => {
            let manifest = crate::manifest::Manifest::read(&p.run)?;
            let root = manifest.params.get("images").and_then(|v| v.as_str()).ok_or_else(|| {
                Error::Data(format!("{}: the run's manifest names no images folder", p.run.display()))
            })?;
            Some(fsutil::Root::new(Path::new(root))?)
        }
        None => None,
    };
    progress.start(ranked.iter().map(|r| 2 * r.k as u64).sum(), "images");
    let mut right: Vec<(Vec<bool>, Vec<bool>)> = Vec::with_capacity(ranked.len());
    for r in &ranked {
        let n = r.order.len();
        let ends = [&r.order[..r.k], &r.order[n - r.k..]];
        let mut judged = Vec::with_capacity(2);
        for end in ends {
            let ok: Vec<bool> = match (&mut classifier, &images_root) {
                (Some(c), Some(root)) => {
                    let mut ok = Vec::with_capacity(end.len());
                    for chunk in end.chunks(p.batch_size.max(1)) {
                        let side = p.view.side();
                        let mut x = Vec::with_capacity(chunk.len() * 3 * side * side);
                        for &i in chunk {
                            let path = root.join(&r.class.images[i].image, "the run's feature cache")?;
                            push_chw(&p.view.apply(&decode::load_image(&path)?), &mut x);
                        }
                        ok.extend(crate::eval::top1(&mut **c, x, chunk.len(), side)?.into_iter().map(|y| y == r.label));
                        progress.advance(chunk.len() as u64);
                    }
                    ok
                }
                _ => {
                    progress.advance(end.len() as u64);
                    end.iter().map(|&i| r.class.images[i].pred == r.label).collect()
                }
            };
            judged.push(ok);
        }
        let low = judged.pop().expect("two ends");
        let high = judged.pop().expect("two ends");
        right.push((high, low));
    }
    progress.finish();
    let share = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len().max(1) as f64;
    let mut rows = Vec::new();
    let mut gaps = Vec::new();
    for (r, (high, low)) in ranked.iter().zip(&right) {
        let (h, l) = (share(high), share(low));
        gaps.push(h - l);
        rows.push(vec![
            r.label.to_string(),
            class_name(num_classes, r.label),
            r.order.len().to_string(),
            r.k.to_string(),
            format!("{:.3}", h * 100.0),
            format!("{:.3}", l * 100.0),
            format!("{:.3}", (h - l) * 100.0),
        ]);
        let ranking = table::csv(
            &["image", "spuriosity"],
            r.order.iter().map(|&i| [r.class.images[i].image.clone(), format!("{:.6}", r.score[i])]),
        );
        write(&p.out.join("rankings").join(format!("{}.csv", r.class.wnid)), ranking.as_bytes())?;
    }
    let header =
        ["class_index", "class_name", "images", "k", "accuracy_most_spurious", "accuracy_least_spurious", "gap"];
    write(&p.out.join("spuriosity.csv"), table::csv(&header, rows).as_bytes())?;
    let high = share(&right.iter().flat_map(|(h, _)| h.iter().copied()).collect::<Vec<_>>());
    let low = share(&right.iter().flat_map(|(_, l)| l.iter().copied()).collect::<Vec<_>>());
    let summary = SpuriositySummary {
        schema: crate::SCHEMA,
        classes: gaps.len(),
        k: p.k,
        model: p.model.clone().unwrap_or_else(|| "the discover run's model".into()),
        gap: high - low,
        accuracy_most_spurious: high,
        accuracy_least_spurious: low,
        images_per_end: right.iter().map(|e| e.0.len()).sum(),
        mean_gap: gaps.iter().sum::<f64>() / gaps.len() as f64,
    };
    write(&p.out.join(SUMMARY_FILE), summary.text().as_bytes())?;
    Ok(summary)
}
