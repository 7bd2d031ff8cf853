//! The paper's noise test (method §g) of any classifier on a Salient dataset.
//!
//! For each class, Gaussian noise (σ) is added inside the soft masks of its core features (the
//! accuracy left is its *spurious accuracy*) or of its spurious features (*core accuracy*), and
//! per feature. Accuracies are per class, aggregated class-balanced; trials give a 95%
//! confidence interval; the noise of `(seed, trial, unit, image)` is fixed, whatever the
//! batching. The classifier is anything that implements [`Classify`]: the engine's ResNet
//! ([`EngineClassifier`]), or a Python callable (the `salient` Python package).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use image::RgbImage;
use salient_engine::annotations::Label;
use salient_engine::burn::tensor::{Tensor, TensorData};
use salient_engine::engine::{block_on, host};
use salient_engine::evaluation::{OverTrials, class_balanced, gaussian_noise, rcs};
use salient_engine::preprocess::{View, push_chw};
use salient_engine::{Engine, decode, fsutil, imagenet, table};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::files::{STATE_DIR, Skipped, jsonl, remove_stale_temporaries, write};
use crate::manifest::{Manifest, file_sha256};
use crate::masks::{ClassMasks, FeatureMasks, MaskSet};
use crate::progress::Progress;

/// A classifier under test.
pub trait Classify {
    /// Logits `[n, classes]`, row-major, of `images`: `[n, 3, side, side]` in [0, 1], row-major.
    fn logits(&mut self, images: Vec<f32>, n: usize, side: usize) -> Result<Vec<f32>>;
}

/// The engine's model as a [`Classify`].
pub struct EngineClassifier<'a>(pub &'a Engine);

impl Classify for EngineClassifier<'_> {
    fn logits(&mut self, images: Vec<f32>, n: usize, side: usize) -> Result<Vec<f32>> {
        let x = Tensor::<4>::from_data(TensorData::new(images, [n, 3, side, side]), &self.0.device);
        Ok(block_on(host(self.0.model.forward(x).logits))?)
    }
}

/// How the noise is drawn and applied.
#[derive(Debug, Clone, Copy)]
pub struct EvalParams {
    /// Noise standard deviation, in [0, 1] pixel units.
    pub sigma: f32,
    /// Independent noise draws.
    pub trials: u32,
    pub seed: u64,
    /// Resize the stored masks through the view again, as the original loader did.
    pub mask_quirk: bool,
    /// Images per classifier call.
    pub batch_size: usize,
    /// The view of an image the classifier sees (the masks' size is its crop).
    pub view: View,
}

impl EvalParams {
    pub fn check(&self) -> Result<()> {
        if !(self.sigma >= 0.0 && self.sigma.is_finite()) || self.trials == 0 {
            return Err(Error::Usage("sigma must be a non-negative number and trials at least 1".into()));
        }
        Ok(())
    }
}

/// Where the report goes, and what identifies the run in its manifest.
pub struct EvalOutput<'a> {
    pub dir: &'a Path,
    /// Continue a stopped run of the same job.
    pub resume: bool,
    /// What identifies the classifier (the weights' SHA-256).
    pub model: String,
    /// The annotations file that labelled the paper's release, if any.
    pub annotations: Option<&'a Path>,
}

/// Accuracies of one unit of the test (a class under one kind of noise, or one pair).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    pub class: usize,
    /// `None` for the whole-class experiments.
    pub feature: Option<usize>,
    pub rank: Option<usize>,
    pub label: Option<Label>,
    pub images: usize,
    pub clean: f64,
    /// Noisy accuracy per trial.
    pub noisy: Vec<f64>,
}

/// Everything one class contributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: usize,
    /// Noise on the core regions: the accuracy left is the spurious accuracy.
    pub core_noise: Option<Unit>,
    /// Noise on the spurious regions: the core accuracy.
    pub spurious_noise: Option<Unit>,
    /// Noise on one feature's regions at a time.
    pub single: Vec<Unit>,
    pub skipped: Vec<Skipped>,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub classes_with_core_features: usize,
    pub classes_with_spurious_features: usize,
    pub clean_accuracy_core_images: f64,
    pub clean_accuracy_spurious_images: f64,
    pub core_accuracy: OverTrials,
    pub images_skipped: usize,
    pub mask_quirk: bool,
    /// Relative core sensitivity, from the class-balanced accuracies of each trial.
    pub rcs: OverTrials,
    pub schema: u32,
    pub seed: u64,
    pub sigma: f32,
    pub spurious_accuracy: OverTrials,
    pub trials: u32,
}

/// The per-class tables, as rows of text (the CSVs' columns).
pub struct Tables {
    /// `noise_in_core_features/std_<σ>.csv`.
    pub core_noise: Vec<Vec<String>>,
    /// `noise_in_spurious_features/std_<σ>.csv`.
    pub spurious_noise: Vec<Vec<String>>,
    /// `noise_in_single_feature/std_<σ>.csv`.
    pub single: Vec<Vec<String>>,
    /// `rcs_per_class.csv`.
    pub rcs: Vec<Vec<String>>,
}

impl Tables {
    pub const CORE_NOISE: [&str; 4] = ["class_index", "class_name", "clean_accuracy", "spurious_accuracy"];
    pub const SPURIOUS_NOISE: [&str; 4] = ["class_index", "class_name", "clean_accuracy", "core_accuracy"];
    pub const SINGLE: [&str; 7] = [
        "class_index",
        "feature_index",
        "feature_rank",
        "feature_label",
        "class_name",
        "clean_accuracy",
        "noisy_accuracy",
    ];
    pub const RCS: [&str; 5] = ["class_index", "class_name", "core_accuracy", "spurious_accuracy", "rcs"];
}

/// What the test found.
pub struct EvalReport {
    pub results: Vec<ClassResult>,
    pub summary: Summary,
    pub tables: Tables,
}

/// Runs the test of `classifier` on `masks` (images under `images`). With `output`, each
/// class's result is kept as it finishes (a stopped run resumes) and the report is written
/// there: the paper's per-class CSVs, `rcs_per_class.csv`, `summary.json`,
/// `core_vs_spurious.svg` and `skipped.jsonl`. `class_names` names the rows (ImageNet's
/// when `None`).
pub fn evaluate(
    masks: &MaskSet,
    images: &Path,
    classifier: &mut dyn Classify,
    params: &EvalParams,
    class_names: Option<&[String]>,
    output: Option<&EvalOutput>,
    progress: &dyn Progress,
) -> Result<EvalReport> {
    params.check()?;
    let part = |dir: &Path, class: usize| dir.join(STATE_DIR).join("classes").join(format!("{class}.json"));
    if let Some(out) = output {
        let params_json = json!({
            "model": out.model,
            "dataset": masks.fingerprint()?,
            "annotations": out.annotations.map(file_sha256).transpose()?,
            "images": std::fs::canonicalize(images).map_err(|e| salient_engine::Error::read(images, e))?.display().to_string(),
            "sigma": params.sigma,
            "trials": params.trials,
            "seed": params.seed,
            "mask_quirk": params.mask_quirk,
        });
        Manifest::new("eval", params_json).claim(out.dir, out.resume)?;
        remove_stale_temporaries(out.dir)?;
    }
    let done = |class: usize| output.is_some_and(|o| part(o.dir, class).exists());
    let total: usize = masks
        .classes
        .iter()
        .filter(|(c, _)| !done(**c))
        .map(|(_, m)| m.features.iter().flat_map(|f| f.images.iter().map(|i| &i.name)).collect::<BTreeSet<_>>().len())
        .sum();
    progress.start(total as u64, "images");
    let images_root = fsutil::Root::new(images)?;
    let mut results = Vec::with_capacity(masks.classes.len());
    for (&class, cm) in &masks.classes {
        let result = match output {
            Some(out) if done(class) => {
                let p = part(out.dir, class);
                let text = fsutil::read_text(&p)?;
                serde_json::from_str(&text).map_err(|e| Error::Data(format!("{}: corrupt part ({e})", p.display())))?
            }
            _ => {
                let result = ClassTest { masks, images: &images_root, params, progress }.run(classifier, class, cm)?;
                if let Some(out) = output {
                    write(
                        &part(out.dir, class),
                        (serde_json::to_string(&result).expect("plain data") + "\n").as_bytes(),
                    )?;
                }
                result
            }
        };
        results.push(result);
    }
    progress.finish();
    let name = |c: usize| match class_names {
        Some(names) => names.get(c).cloned().unwrap_or_else(|| format!("class {c}")),
        None => imagenet::class_name(1000, c),
    };
    let report = report(results, params, name);
    if let Some(out) = output {
        report.write(out.dir, params.sigma)?;
    }
    Ok(report)
}

/// The test of one class.
struct ClassTest<'a> {
    masks: &'a MaskSet,
    images: &'a fsutil::Root,
    params: &'a EvalParams,
    progress: &'a dyn Progress,
}

impl ClassTest<'_> {
    fn run(&self, classifier: &mut dyn Classify, class: usize, cm: &ClassMasks) -> Result<ClassResult> {
        let params = self.params;
        let batch = params.batch_size.max(1);
        // Every image of the class once: its view and clean prediction.
        let mut sources: BTreeMap<&str, &str> = BTreeMap::new();
        for f in &cm.features {
            for r in &f.images {
                sources.insert(&r.name, &r.source);
            }
        }
        let mut views: BTreeMap<&str, RgbImage> = BTreeMap::new();
        let mut skipped = Vec::new();
        for (name, source) in &sources {
            match self.images.join(source, "the dataset's index").and_then(|p| decode::load_image(&p)) {
                Ok(img) => {
                    views.insert(name, params.view.apply(&img));
                }
                Err(e) => skipped.push(Skipped { image: source.to_string(), reason: e.to_string() }),
            }
            self.progress.advance(1);
        }
        let side = params.view.side();
        let names: Vec<&str> = views.keys().copied().collect();
        let mut clean: BTreeMap<&str, bool> = BTreeMap::new();
        for chunk in names.chunks(batch) {
            let mut x = Vec::with_capacity(chunk.len() * 3 * side * side);
            for n in chunk {
                push_chw(&views[n], &mut x);
            }
            for (n, p) in chunk.iter().zip(top1(classifier, x, chunk.len(), side)?) {
                clean.insert(n, p == class);
            }
        }
        // A unit: images with, for each, the masks (pixelwise max) of the selected features that list it.
        let unit = |classifier: &mut dyn Classify, key: &str, selected: &[&FeatureMasks]| -> Result<Option<Unit>> {
            let mut per_image: BTreeMap<&str, image::GrayImage> = BTreeMap::new();
            for f in selected {
                for r in &f.images {
                    if !views.contains_key(r.name.as_str()) {
                        continue;
                    }
                    let m = self.masks.load_mask(r, params.view.crop)?;
                    per_image
                        .entry(&r.name)
                        .and_modify(|acc| {
                            acc.pixels_mut().zip(m.pixels()).for_each(|(a, b)| a.0[0] = a.0[0].max(b.0[0]))
                        })
                        .or_insert(m);
                }
            }
            if per_image.is_empty() {
                return Ok(None);
            }
            let items: Vec<(&str, Vec<f32>)> = per_image
                .into_iter()
                .map(|(n, m)| {
                    let m = if params.mask_quirk { params.view.apply_gray(&m) } else { m };
                    (n, m.as_raw().iter().map(|v| f32::from(*v) / 255.0).collect())
                })
                .collect();
            let clean_acc = items.iter().filter(|(n, _)| clean[n]).count() as f64 / items.len() as f64;
            let mut noisy = Vec::new();
            for trial in 0..params.trials {
                let mut correct = 0usize;
                for chunk in items.chunks(batch) {
                    let mut x = Vec::with_capacity(chunk.len() * 3 * side * side);
                    for (n, m) in chunk {
                        let start = x.len();
                        push_chw(&views[n], &mut x);
                        let z = gaussian_noise(params.seed, trial, &format!("{key}/{n}"), 3 * side * side);
                        add_masked_noise(&mut x[start..], m, &z, params.sigma);
                    }
                    correct += top1(classifier, x, chunk.len(), side)?.into_iter().filter(|p| *p == class).count();
                }
                noisy.push(correct as f64 / items.len() as f64);
            }
            Ok(Some(Unit {
                class,
                feature: None,
                rank: None,
                label: None,
                images: items.len(),
                clean: clean_acc,
                noisy,
            }))
        };
        let of = |l: Label| cm.features.iter().filter(|f| f.label == l).collect::<Vec<_>>();
        let core_noise = unit(classifier, &format!("core/{class}"), &of(Label::Core))?;
        let spurious_noise = unit(classifier, &format!("spurious/{class}"), &of(Label::Spurious))?;
        let mut single = Vec::new();
        for f in &cm.features {
            if let Some(mut u) = unit(classifier, &format!("single/{class}/{}", f.feature), &[f])? {
                u.feature = Some(f.feature);
                u.rank = Some(f.rank);
                u.label = Some(f.label);
                single.push(u);
            }
        }
        Ok(ClassResult { class, core_noise, spurious_noise, single, skipped })
    }
}

/// `clamp(x + σ·z·m, 0, 1)` for one image: `x`, `z` `[3, H, W]`, `m` `[H, W]` in [0, 1]
/// (the same mask on every channel).
pub fn add_masked_noise(x: &mut [f32], m: &[f32], z: &[f32], sigma: f32) {
    let plane = m.len();
    for (i, (v, z)) in x.iter_mut().zip(z).enumerate() {
        *v = (*v + z * m[i % plane] * sigma).clamp(0.0, 1.0);
    }
}

/// Top-1 classes of a batch (ties go to the lowest index), the classifier's answer checked.
fn top1(classifier: &mut dyn Classify, images: Vec<f32>, n: usize, side: usize) -> Result<Vec<usize>> {
    let logits = classifier.logits(images, n, side)?;
    if n == 0 || logits.is_empty() || logits.len() % n != 0 {
        return Err(Error::Classifier(format!(
            "it returned {} values for {n} images: logits must be [images, classes]",
            logits.len()
        )));
    }
    let c = logits.len() / n;
    Ok(logits.chunks(c).map(salient_engine::importance::argmax).collect())
}

/// Percent with three decimals, as the reference CSVs.
fn pct(x: f64) -> String {
    format!("{:.3}", x * 100.0)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn report(results: Vec<ClassResult>, params: &EvalParams, name: impl Fn(usize) -> String) -> EvalReport {
    let mut t = Tables { core_noise: Vec::new(), spurious_noise: Vec::new(), single: Vec::new(), rcs: Vec::new() };
    for r in &results {
        if let Some(u) = &r.core_noise {
            t.core_noise.push(vec![r.class.to_string(), name(r.class), pct(u.clean), pct(mean(&u.noisy))]);
        }
        if let Some(u) = &r.spurious_noise {
            t.spurious_noise.push(vec![r.class.to_string(), name(r.class), pct(u.clean), pct(mean(&u.noisy))]);
        }
        for u in &r.single {
            t.single.push(vec![
                r.class.to_string(),
                u.feature.unwrap_or(0).to_string(),
                u.rank.unwrap_or(0).to_string(),
                u.label.map_or("", Label::as_str).to_owned(),
                name(r.class),
                pct(u.clean),
                pct(mean(&u.noisy)),
            ]);
        }
        if let (Some(c), Some(s)) = (&r.spurious_noise, &r.core_noise) {
            let (core, spur) = (mean(&c.noisy), mean(&s.noisy));
            t.rcs.push(vec![
                r.class.to_string(),
                name(r.class),
                pct(core),
                pct(spur),
                format!("{:.4}", rcs(core, spur)),
            ]);
        }
    }
    // Class-balanced accuracy per trial, then over trials.
    let per_trial = |pick: fn(&ClassResult) -> Option<&Unit>| -> Vec<f64> {
        (0..params.trials as usize)
            .map(|t| class_balanced(&results.iter().filter_map(pick).map(|u| u.noisy[t]).collect::<Vec<_>>()))
            .collect()
    };
    let spurious_acc = per_trial(|r| r.core_noise.as_ref());
    let core_acc = per_trial(|r| r.spurious_noise.as_ref());
    let rcs_trials: Vec<f64> = core_acc.iter().zip(&spurious_acc).map(|(c, s)| rcs(*c, *s)).collect();
    let clean = |pick: fn(&ClassResult) -> Option<&Unit>| {
        class_balanced(&results.iter().filter_map(pick).map(|u| u.clean).collect::<Vec<_>>())
    };
    let summary = Summary {
        classes_with_core_features: results.iter().filter(|r| r.core_noise.is_some()).count(),
        classes_with_spurious_features: results.iter().filter(|r| r.spurious_noise.is_some()).count(),
        clean_accuracy_core_images: clean(|r| r.core_noise.as_ref()),
        clean_accuracy_spurious_images: clean(|r| r.spurious_noise.as_ref()),
        core_accuracy: OverTrials::new(core_acc),
        images_skipped: results.iter().map(|r| r.skipped.len()).sum(),
        mask_quirk: params.mask_quirk,
        rcs: OverTrials::new(rcs_trials),
        schema: crate::SCHEMA,
        seed: params.seed,
        sigma: params.sigma,
        spurious_accuracy: OverTrials::new(spurious_acc),
        trials: params.trials,
    };
    EvalReport { results, summary, tables: t }
}

impl EvalReport {
    /// `summary.json`'s text.
    pub fn summary_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary).expect("plain data") + "\n"
    }

    /// Writes the report's files into `dir` (see [`evaluate`]).
    pub fn write(&self, dir: &Path, sigma: f32) -> Result<()> {
        let file = format!("std_{sigma}.csv");
        let t = &self.tables;
        let csv = |header: &[&str], rows: &[Vec<String>]| table::csv(header, rows.to_vec());
        write(&dir.join("noise_in_core_features").join(&file), csv(&Tables::CORE_NOISE, &t.core_noise).as_bytes())?;
        write(
            &dir.join("noise_in_spurious_features").join(&file),
            csv(&Tables::SPURIOUS_NOISE, &t.spurious_noise).as_bytes(),
        )?;
        write(&dir.join("noise_in_single_feature").join(&file), csv(&Tables::SINGLE, &t.single).as_bytes())?;
        write(&dir.join("rcs_per_class.csv"), csv(&Tables::RCS, &t.rcs).as_bytes())?;
        let points: Vec<(usize, f64, f64)> = self
            .results
            .iter()
            .filter_map(|r| match (&r.spurious_noise, &r.core_noise) {
                (Some(c), Some(s)) => Some((r.class, mean(&c.noisy), mean(&s.noisy))),
                _ => None,
            })
            .collect();
        write(&dir.join("core_vs_spurious.svg"), crate::plot::core_vs_spurious(&points, sigma).as_bytes())?;
        let skipped: Vec<Skipped> = self.results.iter().flat_map(|r| r.skipped.clone()).collect();
        write(&dir.join("skipped.jsonl"), jsonl(&skipped).as_bytes())?;
        write(&dir.join("summary.json"), self.summary_json().as_bytes())
    }
}
