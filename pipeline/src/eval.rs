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
    /// The group's RCS construction on this class (`None` without core features).
    pub core_vs_rest: Option<CoreVsRest>,
    pub skipped: Vec<Skipped>,
}

/// One class under the group's construction (HardImageNet `rfs.py`, CoRM): the same images —
/// those with a core mask — with noise on the dilated core region, then with the same noise on
/// its complement. Counts of images still classified right, per trial.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoreVsRest {
    pub images: usize,
    /// Right without noise.
    pub clean: usize,
    /// Noise on the core region: what is left is spurious accuracy.
    pub noise_on_core: Vec<usize>,
    /// Noise on the rest: core accuracy.
    pub noise_on_rest: Vec<usize>,
}

impl CoreVsRest {
    /// Trials pooled, as `rfs.py` counts them.
    fn accuracy(&self, correct: &[usize]) -> f64 {
        correct.iter().sum::<usize>() as f64 / (self.images * correct.len()).max(1) as f64
    }
    pub fn core_accuracy(&self) -> f64 {
        self.accuracy(&self.noise_on_rest)
    }
    pub fn spurious_accuracy(&self) -> f64 {
        self.accuracy(&self.noise_on_core)
    }
}

/// CoRM's dilation of a core mask: 15 passes of a max filter over a 5-wide cross (the pixel
/// and two on each side, horizontally and vertically), then division by the global maximum.
/// `mask`: `[side, side]` in [0, 1].
pub fn dilate_core(mask: &[f32], side: usize) -> Vec<f32> {
    const PASSES: usize = 15;
    const REACH: usize = 2;
    let mut cur = mask.to_vec();
    let mut next = vec![0f32; cur.len()];
    for _ in 0..PASSES {
        for y in 0..side {
            for x in 0..side {
                let mut v = cur[y * side + x];
                for d in 1..=REACH {
                    if x >= d {
                        v = v.max(cur[y * side + x - d]);
                    }
                    if x + d < side {
                        v = v.max(cur[y * side + x + d]);
                    }
                    if y >= d {
                        v = v.max(cur[(y - d) * side + x]);
                    }
                    if y + d < side {
                        v = v.max(cur[(y + d) * side + x]);
                    }
                }
                next[y * side + x] = v;
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    let max = cur.iter().copied().fold(0f32, f32::max);
    if max > 0.0 {
        cur.iter_mut().for_each(|v| *v /= max);
    }
    cur
}

/// Version of `summary.json`'s layout: 2 made `rcs` the group's construction (layout 1 had
/// the paper's image sets' numbers at the top level, now under `paper`).
pub const SUMMARY_SCHEMA: u32 = 2;

/// What the default RCS is, in `summary.json`.
pub const CONSTRUCTION: &str = "group: the images with a core mask, noise on the dilated core region vs on its \
complement (the same draw), trials pooled, class-balanced (HardImageNet rfs.py, CoRM)";

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Classes under the group's construction (those with core features).
    pub classes: usize,
    pub construction: &'static str,
    /// Class-balanced accuracy with noise outside the dilated core regions.
    pub core_accuracy: f64,
    /// Images under the group's construction.
    pub images: usize,
    pub images_skipped: usize,
    pub mask_quirk: bool,
    /// The paper's construction: core and spurious accuracy on different image sets.
    pub paper: PaperSummary,
    /// Relative core sensitivity of the group's construction.
    pub rcs: f64,
    /// 95% percentile-bootstrap interval of `rcs` over classes (2000 resamples, seeded).
    pub rcs_ci95: [f64; 2],
    pub schema: u32,
    pub seed: u64,
    pub sigma: f32,
    /// Class-balanced accuracy with noise on the dilated core regions.
    pub spurious_accuracy: f64,
    pub trials: u32,
}

/// The numbers of the paper's construction (its per-class CSVs, aggregated): spurious accuracy
/// on the core features' images with noise on their core masks, core accuracy on the spurious
/// features' images with noise on their spurious masks; RCS per trial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaperSummary {
    pub classes_with_core_features: usize,
    pub classes_with_spurious_features: usize,
    pub clean_accuracy_core_images: f64,
    pub clean_accuracy_spurious_images: f64,
    pub core_accuracy: OverTrials,
    pub rcs: OverTrials,
    pub spurious_accuracy: OverTrials,
}

/// The per-class tables, as rows of text (the CSVs' columns).
pub struct Tables {
    /// `noise_in_core_features/std_<σ>.csv`.
    pub core_noise: Vec<Vec<String>>,
    /// `noise_in_spurious_features/std_<σ>.csv`.
    pub spurious_noise: Vec<Vec<String>>,
    /// `noise_in_single_feature/std_<σ>.csv`.
    pub single: Vec<Vec<String>>,
    /// `rcs_per_class.csv`: the group's construction.
    pub rcs: Vec<Vec<String>>,
    /// `rcs_per_class_paper.csv`: the paper's construction, classes with both kinds of feature.
    pub rcs_paper: Vec<Vec<String>>,
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
    pub const RCS: [&str; 7] =
        ["class_index", "class_name", "images", "clean_accuracy", "core_accuracy", "spurious_accuracy", "rcs"];
    pub const RCS_PAPER: [&str; 5] = ["class_index", "class_name", "core_accuracy", "spurious_accuracy", "rcs"];
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
            "construction": "group+paper",
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
        // Per image, the union (pixelwise max) of the selected features' masks, in [0, 1].
        let masks_of = |selected: &[&FeatureMasks]| -> Result<Vec<(&str, Vec<f32>)>> {
            let mut per_image: BTreeMap<&str, image::GrayImage> = BTreeMap::new();
            for f in selected {
                for r in &f.images {
                    let Some((&name, _)) = views.get_key_value(r.name.as_str()) else { continue };
                    let m = self.masks.load_mask(r, params.view.crop)?;
                    per_image
                        .entry(name)
                        .and_modify(|acc| {
                            acc.pixels_mut().zip(m.pixels()).for_each(|(a, b)| a.0[0] = a.0[0].max(b.0[0]))
                        })
                        .or_insert(m);
                }
            }
            Ok(per_image
                .into_iter()
                .map(|(n, m)| {
                    let m = if params.mask_quirk { params.view.apply_gray(&m) } else { m };
                    (n, m.as_raw().iter().map(|v| f32::from(*v) / 255.0).collect())
                })
                .collect())
        };
        // How many of `items` are still classified right with noise `σ·z·m` (z drawn from `key`,
        // `m` the item's noise weight), per trial.
        let correct = |classifier: &mut dyn Classify, key: &str, items: &[(&str, Vec<f32>)]| -> Result<Vec<usize>> {
            let mut per_trial = Vec::with_capacity(params.trials as usize);
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
                per_trial.push(correct);
            }
            Ok(per_trial)
        };
        let unit = |classifier: &mut dyn Classify, key: &str, items: &[(&str, Vec<f32>)]| -> Result<Option<Unit>> {
            if items.is_empty() {
                return Ok(None);
            }
            let clean_acc = items.iter().filter(|(n, _)| clean[n]).count() as f64 / items.len() as f64;
            let noisy = correct(classifier, key, items)?.into_iter().map(|c| c as f64 / items.len() as f64).collect();
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
        let core = masks_of(&of(Label::Core))?;
        // The group's construction: the images with a core mask, noise on the dilated core
        // region or on its complement, the same draw for both.
        let core_vs_rest = if core.is_empty() {
            None
        } else {
            let dilated: Vec<(&str, Vec<f32>)> = core.iter().map(|(n, m)| (*n, dilate_core(m, side))).collect();
            let rest: Vec<(&str, Vec<f32>)> =
                dilated.iter().map(|(n, m)| (*n, m.iter().map(|v| 1.0 - v).collect())).collect();
            let key = format!("group/{class}");
            Some(CoreVsRest {
                images: dilated.len(),
                clean: dilated.iter().filter(|(n, _)| clean[n]).count(),
                noise_on_core: correct(classifier, &key, &dilated)?,
                noise_on_rest: correct(classifier, &key, &rest)?,
            })
        };
        let core_noise = unit(classifier, &format!("core/{class}"), &core)?;
        let spurious_noise = unit(classifier, &format!("spurious/{class}"), &masks_of(&of(Label::Spurious))?)?;
        let mut single = Vec::new();
        for f in &cm.features {
            if let Some(mut u) = unit(classifier, &format!("single/{class}/{}", f.feature), &masks_of(&[f])?)? {
                u.feature = Some(f.feature);
                u.rank = Some(f.rank);
                u.label = Some(f.label);
                single.push(u);
            }
        }
        Ok(ClassResult { class, core_noise, spurious_noise, single, core_vs_rest, skipped })
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
pub(crate) fn top1(classifier: &mut dyn Classify, images: Vec<f32>, n: usize, side: usize) -> Result<Vec<usize>> {
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
    let mut t = Tables {
        core_noise: Vec::new(),
        spurious_noise: Vec::new(),
        single: Vec::new(),
        rcs: Vec::new(),
        rcs_paper: Vec::new(),
    };
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
        if let Some(g) = &r.core_vs_rest {
            let (core, spur) = (g.core_accuracy(), g.spurious_accuracy());
            t.rcs.push(vec![
                r.class.to_string(),
                name(r.class),
                g.images.to_string(),
                pct(g.clean as f64 / g.images as f64),
                pct(core),
                pct(spur),
                format!("{:.4}", rcs(core, spur)),
            ]);
        }
        if let (Some(c), Some(s)) = (&r.spurious_noise, &r.core_noise) {
            let (core, spur) = (mean(&c.noisy), mean(&s.noisy));
            t.rcs_paper.push(vec![
                r.class.to_string(),
                name(r.class),
                pct(core),
                pct(spur),
                format!("{:.4}", rcs(core, spur)),
            ]);
        }
    }
    // The paper's construction: class-balanced accuracy per trial, then over trials.
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
    let paper = PaperSummary {
        classes_with_core_features: results.iter().filter(|r| r.core_noise.is_some()).count(),
        classes_with_spurious_features: results.iter().filter(|r| r.spurious_noise.is_some()).count(),
        clean_accuracy_core_images: clean(|r| r.core_noise.as_ref()),
        clean_accuracy_spurious_images: clean(|r| r.spurious_noise.as_ref()),
        core_accuracy: OverTrials::new(core_acc),
        rcs: OverTrials::new(rcs_trials),
        spurious_accuracy: OverTrials::new(spurious_acc),
    };
    // The group's construction: per class, trials pooled; class-balanced; one RCS.
    let groups: Vec<(f64, f64)> = results
        .iter()
        .filter_map(|r| r.core_vs_rest.as_ref().map(|g| (g.core_accuracy(), g.spurious_accuracy())))
        .collect();
    let balanced = |v: &[(f64, f64)]| {
        (
            class_balanced(&v.iter().map(|g| g.0).collect::<Vec<_>>()),
            class_balanced(&v.iter().map(|g| g.1).collect::<Vec<_>>()),
        )
    };
    let (core, spurious) = balanced(&groups);
    let summary = Summary {
        classes: groups.len(),
        construction: CONSTRUCTION,
        core_accuracy: core,
        images: results.iter().filter_map(|r| r.core_vs_rest.as_ref()).map(|g| g.images).sum(),
        images_skipped: results.iter().map(|r| r.skipped.len()).sum(),
        mask_quirk: params.mask_quirk,
        paper,
        rcs: rcs(core, spurious),
        rcs_ci95: bootstrap_rcs(&groups, params.seed),
        schema: SUMMARY_SCHEMA,
        seed: params.seed,
        sigma: params.sigma,
        spurious_accuracy: spurious,
        trials: params.trials,
    };
    EvalReport { results, summary, tables: t }
}

/// 95% percentile-bootstrap interval of the class-balanced RCS over resamples of the classes
/// (`per_class`: core and spurious accuracy), seeded by `seed` alone.
pub fn bootstrap_rcs(per_class: &[(f64, f64)], seed: u64) -> [f64; 2] {
    crate::bootstrap::interval95(per_class.len(), seed, |idx| {
        let n = idx.len() as f64;
        let (c, s) = idx.iter().fold((0.0, 0.0), |(c, s), &i| (c + per_class[i].0, s + per_class[i].1));
        Some(rcs(c / n, s / n))
    })
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
        write(&dir.join("rcs_per_class_paper.csv"), csv(&Tables::RCS_PAPER, &t.rcs_paper).as_bytes())?;
        let points: Vec<(usize, f64, f64)> = self
            .results
            .iter()
            .filter_map(|r| r.core_vs_rest.as_ref().map(|g| (r.class, g.core_accuracy(), g.spurious_accuracy())))
            .collect();
        write(&dir.join("core_vs_spurious.svg"), crate::plot::core_vs_spurious(&points, sigma).as_bytes())?;
        let skipped: Vec<Skipped> = self.results.iter().flat_map(|r| r.skipped.clone()).collect();
        write(&dir.join("skipped.jsonl"), jsonl(&skipped).as_bytes())?;
        write(&dir.join("summary.json"), self.summary_json().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dilation_grows_a_point_into_a_diamond_and_renormalizes() {
        let side = 80;
        let mut m = vec![0f32; side * side];
        m[40 * side + 40] = 0.5;
        let d = dilate_core(&m, side);
        // 15 passes of a cross reaching 2: the points 15 moves of at most 2 along one axis away.
        for y in 0..side {
            for x in 0..side {
                let moves = x.abs_diff(40).div_ceil(2) + y.abs_diff(40).div_ceil(2);
                assert_eq!(d[y * side + x], if moves <= 15 { 1.0 } else { 0.0 }, "({x}, {y})");
            }
        }
        assert_eq!(dilate_core(&[0f32; 16], 4), vec![0f32; 16], "an empty mask stays empty");
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let per_class: Vec<(f64, f64)> = (0..20).map(|i| (0.5 + 0.02 * i as f64, 0.4 - 0.01 * i as f64)).collect();
        let ci = bootstrap_rcs(&per_class, 3);
        assert_eq!(ci, bootstrap_rcs(&per_class, 3));
        assert_ne!(ci, bootstrap_rcs(&per_class, 4));
        let n = per_class.len() as f64;
        let point = rcs(per_class.iter().map(|p| p.0).sum::<f64>() / n, per_class.iter().map(|p| p.1).sum::<f64>() / n);
        assert!(ci[0] < point && point < ci[1], "{ci:?} around {point}");
        let same = bootstrap_rcs(&[(0.8, 0.4); 5], 0);
        assert_eq!(same[0], same[1], "no spread between identical classes");
    }
}
