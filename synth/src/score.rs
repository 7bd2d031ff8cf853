//! The score (`salient synth score`): the real pipeline on the benchmark, labelled from ground
//! truth, scored against what was planted.
//!
//! discover ranks the robust model's features per class on the training split; each top
//! (class, feature) pair is labelled from ground truth, as a human would from its heatmaps: the
//! share of the feature's heatmap mass (where the mask is at least 0.5) on the object and on
//! each cue, over the pair's top images; spurious (and attributed to a cue) when a cue holds
//! more mass than the object. build then makes the soft masks on the test split, and eval runs
//! the noise test on the robust and the plain model. Reported: precision and recall of
//! spurious-feature discovery against the planted cues, IoU of the masks (thresholded at 0.5)
//! with the ground-truth regions, core and spurious accuracy and RCS for both models, and
//! Spearman's ρ between the planted rates and per-class RCS. The stages run in this process
//! (`salient_pipeline`); their outputs stay in the run folder for inspection, what each
//! would have printed in `logs/`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use salient_engine::annotations::{Bounds, Label};
use salient_engine::dataset::{self, MaskRecord};
use salient_engine::evaluation::rcs;
use salient_engine::{Backend, Engine, encode, fsutil};
use salient_pipeline::Progress;
use salient_pipeline::build::{BuildParams, Built, build};
use salient_pipeline::discover::{DiscoverIndex, DiscoverParams, Discovered, Group, discover};
use salient_pipeline::eval::{EngineClassifier, EvalOutput, EvalParams, EvalReport, evaluate};
use salient_pipeline::inputs::load_views;
use salient_pipeline::masks::MaskSet;
use salient_pipeline::shard::Shard;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::generate::{Manifest, Truth, read_regions, read_truth};
use crate::scene::{Cue, OBJECT};
use crate::{Error, Result};

/// What to score (`salient synth score`).
#[derive(Debug, Clone)]
pub struct ScoreParams {
    /// The benchmark (from [`crate::generate::generate`]).
    pub data: PathBuf,
    /// The robust model: features are discovered with it and masks built from it.
    pub robust: PathBuf,
    /// A plain model, evaluated beside the robust one.
    pub plain: Option<PathBuf>,
    /// Output folder.
    pub out: PathBuf,
    /// Top images per pair used to assign its label.
    pub label_images: usize,
    /// Masks built per (class, feature) pair on the test split.
    pub per_feature: usize,
    /// Feature-attack steps of discover's annotation renders.
    pub attack_steps: usize,
    /// Noise of the eval, in [0, 1] pixel units.
    pub sigma: f32,
    pub trials: u32,
    pub seed: u64,
}

/// What the ground truth says of one discovered pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairLabel {
    pub class: usize,
    pub feature: usize,
    pub rank: usize,
    pub label: Label,
    /// The cue it looks at, when spurious.
    pub cue: Option<String>,
    /// Mean share of heatmap mass on the object.
    pub object_share: f64,
    /// Mean share on each cue (over all the pair's images; 0 where the cue is absent).
    pub cue_shares: BTreeMap<String, f64>,
}

/// One model's noise test, scored.
#[derive(Debug, Clone, Serialize)]
pub struct ModelScore {
    pub weights: String,
    pub core_accuracy: f64,
    pub spurious_accuracy: f64,
    pub rcs: f64,
    /// 95% bootstrap interval of `rcs` over classes.
    pub rcs_ci95: [f64; 2],
    /// Per class: (WordNet id, planted rate, RCS), the group's construction.
    pub rcs_per_class: Vec<(String, f64, f64)>,
    /// Spearman's ρ between planted rate and per-class RCS. A class that leans on its cue
    /// should lose less to noise on its core: the hypothesis is ρ < 0.
    pub spearman_rate_vs_rcs: Option<Correlation>,
}

/// A rank correlation with its evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Correlation {
    pub rho: f64,
    /// Classes it is computed over.
    pub n: usize,
    /// 95% percentile-bootstrap interval over classes (2000 resamples, seeded).
    pub ci95: [f64; 2],
    /// `supports ρ < 0`, `contradicts ρ < 0`, or `inconclusive` (the interval spans 0).
    pub verdict: &'static str,
}

impl Correlation {
    /// ρ of `x` and `y`, with its interval; `None` under 3 points or without spread.
    pub fn new(x: &[f64], y: &[f64], seed: u64) -> Option<Self> {
        let rho = spearman(x, y)?;
        let n = x.len();
        let ci95 = salient_pipeline::bootstrap::interval95(n, seed, |idx| {
            let (xs, ys): (Vec<f64>, Vec<f64>) = idx.iter().map(|&i| (x[i], y[i])).unzip();
            spearman(&xs, &ys)
        });
        let verdict = if ci95[1] < 0.0 {
            "supports ρ < 0"
        } else if ci95[0] > 0.0 {
            "contradicts ρ < 0"
        } else {
            "inconclusive"
        };
        Some(Correlation { rho, n, ci95, verdict })
    }
}

/// `RUN/score.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    #[serde(default = "salient_pipeline::schema")]
    pub schema: u32,
    pub data: String,
    pub pairs: Vec<PairLabel>,
    /// Spurious pairs attributed to their class's planted cue / all pairs labelled spurious.
    pub precision: f64,
    /// Classes with a planted cue in which a top feature was found looking at it / such classes.
    pub recall: f64,
    pub true_positives: usize,
    pub spurious_pairs: usize,
    pub planted_classes: usize,
    pub classes_found: usize,
    /// Mean IoU@0.5 of spurious masks with their cue's region, over the images holding the cue.
    pub iou_spurious: f64,
    pub iou_spurious_masks: usize,
    /// The same over every image a spurious mask was made for: on an image without the cue a
    /// mask that lights up anything scores 0 (a miss), a dark one 1.
    pub iou_spurious_all: f64,
    pub iou_spurious_all_masks: usize,
    /// Each planted cue: found or not, with its size.
    pub cues: Vec<CueFound>,
    /// Mean IoU@0.5 of core masks with the object.
    pub iou_core: f64,
    pub iou_core_masks: usize,
    pub models: Vec<ModelScore>,
}

/// One planted cue, and whether discovery found it.
#[derive(Debug, Clone, Serialize)]
pub struct CueFound {
    pub class: String,
    pub cue: String,
    /// Share of the class's training images that carry it.
    pub train_rate: f64,
    /// Mean share of the image it covers, over the test images that carry it.
    pub area: f64,
    /// A top-5 feature of the class was labelled spurious looking at it.
    pub found: bool,
    /// The robust model's test accuracy on the class's images with the cue and without it:
    /// how much the model leans on the cue (a cue it ignores has no feature to find).
    pub accuracy_with_cue: f64,
    pub accuracy_without_cue: f64,
}

/// What a score run found, with the benchmark's manifest to print it against.
#[derive(Debug, Clone)]
pub struct Scored {
    pub score: Score,
    pub manifest: Manifest,
    /// Where `score.json` was written.
    pub path: PathBuf,
}

/// A stage folder of an earlier score run made from other inputs (other weights or data, labels
/// from another version) is this command's own derived data: it is removed so that the stage
/// starts afresh instead of refusing the folder. `expect`: manifest parameters and their values.
fn restart_if_stale(dir: &Path, expect: &[(&str, &str)], progress: &dyn Progress) -> Result<()> {
    let Ok(old) = salient_pipeline::manifest::Manifest::read(dir) else { return Ok(()) };
    let stale = expect.iter().find(|(k, v)| old.params.get(*k).and_then(Value::as_str) != Some(*v));
    if let Some((key, _)) = stale {
        progress.message(&format!("  {} was made with another {key}: starting it afresh", dir.display()));
        std::fs::remove_dir_all(dir).map_err(|e| salient_engine::Error::write(dir, e))?;
    }
    Ok(())
}

/// The absolute path the stages record for an input folder.
fn canonical(p: &Path) -> Result<String> {
    Ok(std::fs::canonicalize(p).map_err(|e| salient_engine::Error::read(p, e))?.display().to_string())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Labels every pair of discover's index from the ground truth.
fn label_pairs(
    engine: &Engine,
    data: &Path,
    index: &DiscoverIndex,
    truths: &[Truth],
    images: usize,
) -> Result<Vec<PairLabel>> {
    let by_path: BTreeMap<&str, &Truth> = truths.iter().map(|t| (t.path.as_str(), t)).collect();
    let size = engine.view.side();
    let mut out = Vec::new();
    for class in &index.classes {
        let c = class.class;
        for feature in &class.features {
            let (j, rank) = (feature.feature, feature.rank);
            let rels: Vec<String> =
                feature.top_images.iter().take(images).map(|t| format!("train/{}", t.image)).collect();
            let paths: Vec<PathBuf> = rels.iter().map(|r| data.join(r)).collect();
            let views = load_views(&paths, engine.view).into_iter().collect::<Result<Vec<_>, _>>()?;
            let outputs = engine.infer(&views, true)?;
            let (mut object, mut cue_sum) = (0.0, BTreeMap::<String, f64>::new());
            for (rel, out) in rels.iter().zip(&outputs) {
                let truth = by_path
                    .get(rel.as_str())
                    .ok_or_else(|| Error::Data(format!("{rel}: not in ground_truth.jsonl")))?;
                let regions = read_regions(data, truth)?;
                // The mask's core: values of at least 0.5, as the IoU counts them.
                let mask: Vec<f32> = out
                    .maps
                    .as_ref()
                    .expect("maps kept")
                    .soft_mask(&[j], size)
                    .into_iter()
                    .map(|m| if m >= 0.5 { m } else { 0.0 })
                    .collect();
                let total: f64 = mask.iter().map(|&m| m as f64).sum::<f64>().max(1e-9);
                let share = |pred: &dyn Fn(u8) -> bool| {
                    mask.iter().zip(&regions).filter(|(_, r)| pred(**r)).map(|(m, _)| *m as f64).sum::<f64>() / total
                };
                object += share(&|r| r == OBJECT);
                for cue in Cue::ALL {
                    if truth.cues.iter().any(|n| n == cue.name()) {
                        let bit = 1u8 << cue.index();
                        *cue_sum.entry(cue.name().into()).or_default() += share(&|r| r != OBJECT && r & bit != 0);
                    }
                }
            }
            let object_share = object / rels.len().max(1) as f64;
            // Over all the pair's images: a cue absent from an image holds none of its mass.
            let cue_shares: BTreeMap<String, f64> =
                cue_sum.iter().map(|(k, v)| (k.clone(), v / rels.len().max(1) as f64)).collect();
            let best = cue_shares.iter().max_by(|a, b| a.1.total_cmp(b.1)).filter(|(_, v)| **v > object_share);
            out.push(PairLabel {
                class: c,
                feature: j,
                rank,
                label: if best.is_some() { Label::Spurious } else { Label::Core },
                cue: best.map(|(k, _)| k.clone()),
                object_share,
                cue_shares,
            });
        }
    }
    Ok(out)
}

fn iou(mask: &[u8], truth: &[bool]) -> Option<f64> {
    let (mut inter, mut union) = (0usize, 0usize);
    for (&m, &t) in mask.iter().zip(truth) {
        let m = m >= 128;
        inter += (m && t) as usize;
        union += (m || t) as usize;
    }
    truth.iter().any(|&t| t).then(|| inter as f64 / union.max(1) as f64)
}

/// [`iou`] on any image: without truth pixels, 1 for a mask with nothing at 0.5, else 0.
fn iou_any(mask: &[u8], truth: &[bool]) -> f64 {
    iou(mask, truth).unwrap_or(if mask.iter().any(|&m| m >= 128) { 0.0 } else { 1.0 })
}

/// Spearman's ρ (average ranks for ties); `None` under 3 points.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() < 3 {
        return None;
    }
    let ranks = |v: &[f64]| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut k = i;
            while k + 1 < idx.len() && v[idx[k + 1]] == v[idx[i]] {
                k += 1;
            }
            for &p in &idx[i..=k] {
                r[p] = (i + k) as f64 / 2.0;
            }
            i = k + 1;
        }
        r
    };
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let (vx, vy): (f64, f64) = (rx.iter().map(|a| (a - mx).powi(2)).sum(), ry.iter().map(|b| (b - my).powi(2)).sum());
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

fn model_score(weights: &Path, report: &EvalReport, manifest: &Manifest) -> ModelScore {
    // Per class, RCS as rcs_per_class.csv gives it (4 decimals): the group's construction.
    let rows: Vec<(String, f64, f64)> = report
        .results
        .iter()
        .filter_map(|r| {
            let g = r.core_vs_rest.as_ref()?;
            let value: f64 = format!("{:.4}", rcs(g.core_accuracy(), g.spurious_accuracy())).parse().expect("a number");
            manifest.classes.get(r.class).map(|m| (m.wnid.clone(), m.train_rate, value))
        })
        .collect();
    let (x, y): (Vec<f64>, Vec<f64>) = rows.iter().map(|r| (r.1, r.2)).unzip();
    let summary = &report.summary;
    ModelScore {
        weights: s(weights),
        core_accuracy: summary.core_accuracy,
        spurious_accuracy: summary.spurious_accuracy,
        rcs: summary.rcs,
        rcs_ci95: summary.rcs_ci95,
        rcs_per_class: rows,
        spearman_rate_vs_rcs: Correlation::new(&x, &y, summary.seed),
    }
}

/// The text a stage printed, kept in `RUN/logs/<name>.txt`.
fn log(out: &Path, name: &str, text: impl fmt::Display) -> Result<()> {
    let path = out.join("logs").join(format!("{name}.txt"));
    Ok(fsutil::write_atomic(&path, format!("{text}\n").as_bytes())?)
}

/// Runs the pipeline on the benchmark and scores it (see the module's documentation); writes
/// `RUN/score.json`, `RUN/site-notes.json` and the stages' outputs.
pub fn score(a: &ScoreParams, progress: &dyn Progress) -> Result<Scored> {
    let manifest = Manifest::read(&a.data)?;
    let truths = read_truth(&a.data)?;
    std::fs::create_dir_all(a.out.join("logs")).map_err(|e| salient_engine::Error::write(&a.out, e))?;
    let (train, test) = (a.data.join("train"), a.data.join("test"));
    // The stages' engine, as `--backend auto` picks it.
    let device = Backend::fastest().device()?;
    let robust = Engine::load(&a.robust, &device)?;
    let robust_sha = salient_pipeline::manifest::file_sha256(&a.robust)?;

    progress.message("discover: the robust model's top features per class, on the training split");
    let discover_dir = a.out.join("discover");
    restart_if_stale(&discover_dir, &[("weights", &robust_sha), ("images", &canonical(&train)?)], progress)?;
    let params = DiscoverParams {
        images: train.clone(),
        out: discover_dir.clone(),
        classes: None,
        top: 5,
        // The paper's grouping: a class's images are those the model predicts as it.
        group: Group::Predicted,
        per_feature: 65,
        show: 5,
        attack_steps: a.attack_steps,
        step_size: 10.0,
        shard: Shard::WHOLE,
        resume: discover_dir.join(salient_pipeline::discover::INDEX_FILE).exists(),
        batch_size: 32,
        model: robust_sha.clone(),
    };
    let discovered = discover(&robust, &params, progress)?;
    log(&a.out, "discover", &discovered)?;
    let Discovered::Ranked(ranked) = discovered else { unreachable!("a whole run ranks") };

    progress.message("label: each pair from the ground truth (heatmap mass on the object vs on each cue)");
    let engine = Engine::load(&a.robust, &Backend::Flex.device()?)?;
    let pairs = label_pairs(&engine, &a.data, &ranked.index, &truths, a.label_images)?;
    let csv = salient_engine::table::csv(
        &["class", "feature", "label", "rank"],
        pairs
            .iter()
            .map(|p| [p.class.to_string(), p.feature.to_string(), p.label.as_str().to_owned(), p.rank.to_string()]),
    );
    let labels = a.out.join("labels.csv");
    fsutil::write_atomic(&labels, csv.as_bytes())?;

    progress.message("build: soft masks on the test split");
    let dataset = a.out.join("dataset");
    let labels_sha = salient_pipeline::manifest::file_sha256(&labels)?;
    restart_if_stale(
        &dataset,
        &[("weights", &robust_sha), ("images", &canonical(&test)?), ("annotations", &labels_sha)],
        progress,
    )?;
    let params = BuildParams {
        images: test.clone(),
        annotations: labels.clone(),
        out: dataset.clone(),
        per_feature: a.per_feature,
        classes: None,
        shard: Shard::WHOLE,
        resume: dataset.exists(),
        batch_size: 32,
        model: robust_sha.clone(),
    };
    let built = build(&robust, &params, progress)?;
    log(&a.out, "build", &built)?;
    let Built::Dataset { .. } = built else { unreachable!("a whole build writes the dataset") };

    // IoU of each mask with its ground-truth region.
    let index_path = dataset.join(dataset::INDEX_FILE);
    let records: Vec<MaskRecord> = dataset::parse_index(&fsutil::shown(&index_path), &fsutil::read_text(&index_path)?)?;
    let label_of: BTreeMap<(usize, usize), &PairLabel> = pairs.iter().map(|p| ((p.class, p.feature), p)).collect();
    // The ground-truth regions of every image with masks, read once.
    let by_path: BTreeMap<String, &Truth> = truths.iter().map(|t| (t.path.clone(), t)).collect();
    let mut regions_of: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for r in &records {
        if let (false, Some(truth)) =
            (regions_of.contains_key(r.source.as_str()), by_path.get(&format!("test/{}", r.source)))
        {
            regions_of.insert(&r.source, read_regions(&a.data, truth)?);
        }
    }
    let (mut iou_s, mut iou_s_all, mut iou_c) = (Vec::new(), Vec::new(), Vec::new());
    for r in &records {
        let Some(regions) = regions_of.get(r.source.as_str()) else { continue };
        let mask_path = dataset.join(&r.mask);
        let mask = image::open(&mask_path)
            .map_err(|e| Error::Data(format!("{}: {e}", mask_path.display())))?
            .to_luma8()
            .into_raw();
        if mask.len() != regions.len() {
            return Err(Error::Data(format!("{}: mask size differs from the ground truth", mask_path.display())));
        }
        match r.label {
            Label::Core => iou_c.extend(iou(&mask, &regions.iter().map(|&g| g == OBJECT).collect::<Vec<_>>())),
            Label::Spurious => {
                let Some(cue) = label_of.get(&(r.class, r.feature)).and_then(|p| p.cue.as_deref()) else { continue };
                let bit = 1u8 << Cue::ALL.iter().find(|c| c.name() == cue).map_or(0, |c| c.index());
                let truth: Vec<bool> = regions.iter().map(|&g| g != OBJECT && g & bit != 0).collect();
                iou_s.extend(iou(&mask, &truth));
                iou_s_all.push(iou_any(&mask, &truth));
            }
        }
    }

    write_site_notes(a, &manifest, &pairs, &records, &regions_of)?;

    let mut models = Vec::new();
    for (name, weights) in [("robust", Some(&a.robust)), ("plain", a.plain.as_ref())] {
        let Some(weights) = weights else { continue };
        progress.message(&format!("eval: the {name} model under noise on core vs spurious regions"));
        let dir = a.out.join(format!("eval-{name}"));
        if dir.join("summary.json").exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let engine = Engine::load(weights, &device)?;
        let params = EvalParams {
            sigma: a.sigma,
            trials: a.trials,
            seed: a.seed,
            mask_quirk: false,
            batch_size: 32,
            view: engine.view,
        };
        let bounds = Bounds { classes: engine.config.num_classes, features: usize::MAX };
        let masks = MaskSet::open(&dataset, None, bounds)?;
        let output = EvalOutput {
            dir: &dir,
            resume: false,
            model: salient_pipeline::manifest::file_sha256(weights)?,
            annotations: None,
        };
        let report = evaluate(
            &masks,
            &test,
            &mut EngineClassifier(&engine),
            &params,
            Some(&engine.class_names),
            Some(&output),
            progress,
        )?;
        log(&a.out, &format!("eval-{name}"), report.summary_json().trim_end())?;
        models.push(model_score(weights, &report, &manifest));
    }

    // Discovery against the plant.
    let planted: BTreeMap<usize, &str> =
        manifest.classes.iter().filter_map(|c| c.cue.as_deref().map(|k| (c.index, k))).collect();
    let spurious: Vec<&PairLabel> = pairs.iter().filter(|p| p.label == Label::Spurious).collect();
    let hit = |p: &PairLabel| planted.get(&p.class).is_some_and(|k| p.cue.as_deref() == Some(*k));
    let true_positives = spurious.iter().filter(|p| hit(p)).count();
    let classes_found = planted.keys().filter(|&&c| spurious.iter().any(|p| p.class == c && hit(p))).count();
    let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    let (_, reliance) = crate::train::test_reliance(&robust.model, &a.data, &manifest, &truths)?;
    let cues = manifest
        .classes
        .iter()
        .filter_map(|c| {
            let cue = c.cue.as_deref()?;
            let bit = 1u8 << Cue::ALL.iter().find(|k| k.name() == cue).map_or(0, |k| k.index());
            let areas: Vec<f64> = regions_of
                .iter()
                .filter(|(source, _)| source.starts_with(&format!("{}/", c.wnid)))
                .map(|(_, g)| g.iter().filter(|&&v| v != OBJECT && v & bit != 0).count() as f64 / g.len() as f64)
                .filter(|&a| a > 0.0)
                .collect();
            Some(CueFound {
                class: c.wnid.clone(),
                cue: cue.to_owned(),
                train_rate: c.train_rate,
                area: mean(&areas),
                found: spurious.iter().any(|p| p.class == c.index && hit(p)),
                accuracy_with_cue: reliance.iter().find(|r| r.class == c.wnid).map_or(f64::NAN, |r| r.with_cue),
                accuracy_without_cue: reliance.iter().find(|r| r.class == c.wnid).map_or(f64::NAN, |r| r.without_cue),
            })
        })
        .collect();
    let score = Score {
        schema: salient_pipeline::SCHEMA,
        data: s(&a.data),
        precision: true_positives as f64 / spurious.len().max(1) as f64,
        recall: classes_found as f64 / planted.len().max(1) as f64,
        true_positives,
        spurious_pairs: spurious.len(),
        planted_classes: planted.len(),
        classes_found,
        iou_spurious: mean(&iou_s),
        iou_spurious_masks: iou_s.len(),
        iou_spurious_all: mean(&iou_s_all),
        iou_spurious_all_masks: iou_s_all.len(),
        cues,
        iou_core: mean(&iou_c),
        iou_core_masks: iou_c.len(),
        models,
        pairs,
    };
    let json = serde_json::to_string_pretty(&score).expect("plain data") + "\n";
    let path = a.out.join("score.json");
    fsutil::write_atomic(&path, json.as_bytes())?;
    Ok(Scored { score, manifest, path })
}

/// RUN/site-notes.json for `salient site --notes`: each class's plant, each pair's ground-truth
/// shares, and an overlay of the ground-truth regions for every image of the dataset (object
/// green, cues magenta).
fn write_site_notes(
    a: &ScoreParams,
    manifest: &Manifest,
    pairs: &[PairLabel],
    records: &[MaskRecord],
    regions_of: &BTreeMap<&str, Vec<u8>>,
) -> Result<()> {
    let mut notes = salient_engine::site::SiteNotes { schema: salient_pipeline::SCHEMA, ..Default::default() };
    for c in &manifest.classes {
        let text = match &c.cue {
            Some(cue) => format!(
                "Synthetic benchmark: the {cue} cue is planted in {:.0}% of this class's training images (and {:.0}% of other classes'); the core object is the {}.",
                100.0 * c.train_rate,
                100.0 * manifest.plan.base_rate,
                c.name
            ),
            None => format!("Synthetic benchmark: no cue is planted in this class; the core object is the {}.", c.name),
        };
        notes.classes.insert(c.index, text);
    }
    for p in pairs {
        let mut cues: Vec<(&String, &f64)> = p.cue_shares.iter().collect();
        cues.sort_by(|x, y| y.1.total_cmp(x.1));
        let cue_text: Vec<String> =
            cues.iter().take(2).map(|(k, v)| format!("{:.0}% on the {k}", 100.0 * **v)).collect();
        let text = format!(
            "Ground truth over its top {} training images: {:.0}% of its heatmap mass on the object{}{}.",
            a.label_images,
            100.0 * p.object_share,
            if cue_text.is_empty() { String::new() } else { ", ".to_string() },
            cue_text.join(", ")
        );
        notes.features.insert(format!("{}/{}", p.class, p.feature), text);
    }
    for r in records {
        if notes.images.contains_key(&r.source) {
            continue;
        }
        let Some(regions) = regions_of.get(r.source.as_str()) else { continue };
        let mut rgba = Vec::with_capacity(regions.len() * 4);
        for &g in regions {
            rgba.extend_from_slice(match g {
                OBJECT => &[40, 220, 90, 120],
                0 => &[0, 0, 0, 0],
                _ => &[235, 20, 200, 140],
            });
        }
        let side = (regions.len() as f64).sqrt() as u32;
        let img =
            image::DynamicImage::ImageRgba8(image::RgbaImage::from_raw(side, side, rgba).expect("square regions"));
        let rel = format!("truth/{}/{}.png", r.wnid, r.image);
        salient_pipeline::files::write(&a.out.join(&rel), &encode::png(&img)?)?;
        notes.images.insert(r.source.clone(), rel);
    }
    let json = serde_json::to_string_pretty(&notes).expect("plain data") + "\n";
    Ok(fsutil::write_atomic(&a.out.join("site-notes.json"), json.as_bytes())?)
}

impl fmt::Display for Scored {
    /// The table `salient synth score` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (score, manifest) = (&self.score, &self.manifest);
        writeln!(f, "{:<12} {:<16} top features (rank: feature label[cue])", "class", "planted cue")?;
        for c in &manifest.classes {
            let plant = c.cue.as_ref().map_or("—".to_string(), |k| format!("{k} {:.0}%", c.train_rate * 100.0));
            let feats: Vec<String> = score
                .pairs
                .iter()
                .filter(|p| p.class == c.index)
                .map(|p| match (&p.label, &p.cue) {
                    (Label::Spurious, Some(k)) => format!("{}:{} SPURIOUS[{k}]", p.rank, p.feature),
                    _ => format!("{}:{} core", p.rank, p.feature),
                })
                .collect();
            writeln!(f, "{:<12} {:<16} {}", c.wnid, plant, feats.join("  "))?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "discovery: precision {:.2} ({} of {} spurious pairs look at their class's planted cue), recall {:.2} ({} of {} planted cues found)",
            score.precision,
            score.true_positives,
            score.spurious_pairs,
            score.recall,
            score.classes_found,
            score.planted_classes
        )?;
        writeln!(
            f,
            "masks, IoU at 0.5: spurious vs cue region {:.3} over the {} images holding the cue, {:.3} over all {} \
             (0 where a mask lights up a cue-free image); core vs object {:.3} ({} masks)",
            score.iou_spurious,
            score.iou_spurious_masks,
            score.iou_spurious_all,
            score.iou_spurious_all_masks,
            score.iou_core,
            score.iou_core_masks
        )?;
        for c in &score.cues {
            writeln!(
                f,
                "  cue {:<10} in {:<12} train rate {:>4.0}%, covers {:>4.1}% of the image, robust model's test \
                 accuracy with / without it {:>3.0}% / {:>3.0}%: {}",
                c.cue,
                c.class,
                100.0 * c.train_rate,
                100.0 * c.area,
                100.0 * c.accuracy_with_cue,
                100.0 * c.accuracy_without_cue,
                if c.found { "found" } else { "missed" }
            )?;
        }
        writeln!(
            f,
            "noise test, the group's construction (the same images, noise on the dilated core vs the rest); \
             hypothesis: the more a class's cue was planted, the lower its RCS (Spearman ρ < 0)"
        )?;
        writeln!(
            f,
            "{:<8} {:>14} {:>18} {:>24} {:>40}",
            "model", "core accuracy", "spurious accuracy", "RCS [95% CI]", "Spearman ρ(rate, RCS) [95% CI], n"
        )?;
        for (name, m) in ["robust", "plain"].iter().zip(&score.models) {
            let rho = m.spearman_rate_vs_rcs.as_ref().map_or("n/a (<3 classes)".into(), |c| {
                format!("{:+.2} [{:+.2}, {:+.2}], n={}: {}", c.rho, c.ci95[0], c.ci95[1], c.n, c.verdict)
            });
            writeln!(
                f,
                "{:<8} {:>13.1}% {:>17.1}% {:>7.3} [{:+.3}, {:+.3}] {:>40}",
                name,
                100.0 * m.core_accuracy,
                100.0 * m.spurious_accuracy,
                m.rcs,
                m.rcs_ci95[0],
                m.rcs_ci95[1],
                rho
            )?;
        }
        write!(f, "wrote {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_known_values() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn iou_counts_pixels() {
        let mask = [255, 255, 0, 0];
        assert_eq!(iou(&mask, &[true, false, false, false]), Some(0.5));
        assert_eq!(iou(&mask, &[false; 4]), None);
    }

    #[test]
    fn a_stage_made_from_other_inputs_starts_afresh_and_a_matching_one_is_kept() {
        let dir = std::env::temp_dir().join(format!("salient-score-stale-{}", std::process::id()));
        let stage = salient_pipeline::manifest::Manifest::new(
            "build",
            serde_json::json!({"annotations": "aa", "weights": "ww"}),
        );
        stage.claim(&dir, false).unwrap();
        let quiet = salient_pipeline::Quiet;
        restart_if_stale(&dir, &[("weights", "ww"), ("annotations", "aa")], &quiet).unwrap();
        assert!(
            dir.join(salient_pipeline::manifest::MANIFEST_FILE).exists(),
            "a matching stage is resumed, not removed"
        );
        restart_if_stale(&dir, &[("weights", "ww"), ("annotations", "bb")], &quiet).unwrap();
        assert!(!dir.exists(), "a stage built from other labels is removed");
        restart_if_stale(&dir, &[("weights", "ww")], &quiet).unwrap(); // nothing there: nothing to do
    }
}
