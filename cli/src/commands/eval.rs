//! `salient eval`: the paper's noise-sensitivity test of any classifier on a Salient dataset.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage};
use salient_engine::annotations::{Bounds, Label};
use salient_engine::burn::tensor::Tensor;
use salient_engine::dataset::{self, MaskRecord};
use salient_engine::evaluation::{
    Classifier, OverTrials, add_masked_noise, batch_tensors, class_balanced, gaussian_noise, rcs,
};
use salient_engine::table;
use salient_engine::{Engine, decode, engine::block_on, engine::host, fsutil};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::model::ModelArgs;
use crate::pipeline::manifest::{Manifest, bytes_sha256, file_sha256};
use crate::pipeline::{STATE_DIR, Skipped, jsonl, remove_stale_temporaries, write};
use crate::progress;

/// Measure how much a classifier relies on core vs spurious regions (the paper's noise test).
///
/// For each class, Gaussian noise (σ = --sigma) is added inside the soft masks of its core
/// features (the accuracy left is its *spurious accuracy*: what the model gets from elsewhere)
/// or of its spurious features (*core accuracy*), and per feature. Accuracies are per class,
/// aggregated class-balanced; --trials noise draws give a 95% confidence interval; --seed makes
/// the draws reproducible. RCS = (core − spurious)/(2·min(ā, 1−ā)), ā their mean. Writes the
/// paper's per-class CSVs (noise_in_core_features/std_<σ>.csv, ...), rcs_per_class.csv,
/// summary.json and core_vs_spurious.svg.
///
/// DATASET is a `salient build` output, or the paper's released Salient ImageNet (no
/// index.jsonl: then --annotations gives the labels). Masks are used as stored; --mask-quirk
/// reproduces the original loader, which resizes the 224×224 masks again (zooming them 8/7).
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The classifier to test: any torchvision/timm ResNet-family checkpoint the engine loads.
    #[command(flatten)]
    model: ModelArgs,

    /// The dataset folder.
    #[arg(long, value_name = "DATASET")]
    dataset: PathBuf,

    /// The images, ImageNet layout (the folder the dataset was built from).
    #[arg(long, value_name = "ROOT")]
    images: PathBuf,

    /// Labels, when DATASET is the paper's release (which has no index.jsonl).
    #[arg(long, value_name = "FILE")]
    annotations: Option<PathBuf>,

    /// Noise standard deviation, in [0, 1] pixel units.
    #[arg(long, default_value_t = 0.25, value_name = "S")]
    sigma: f32,

    /// Independent noise draws.
    #[arg(long, default_value_t = 3, value_name = "N")]
    trials: u32,

    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Resize the stored 224×224 masks through Resize(256)+CenterCrop(224), as the original code did.
    #[arg(long)]
    mask_quirk: bool,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,

    /// Continue a stopped evaluation.
    #[arg(long)]
    resume: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    batch_size: usize,
}

/// A dataset's masks, grouped: class → feature → (label, rank, images best first).
struct Masks {
    classes: BTreeMap<usize, ClassMasks>,
}

struct ClassMasks {
    features: Vec<FeatureMasks>,
}

struct FeatureMasks {
    feature: usize,
    label: Label,
    /// 1-based rank among the class's features.
    rank: usize,
    images: Vec<MaskRef>,
}

/// One mask of a feature, as the dataset lists it.
struct MaskRef {
    /// The image's name.
    name: String,
    /// The image file, relative to the images root.
    source: String,
    /// The mask file, relative to the dataset root.
    mask: String,
    /// SHA-256 of the mask file (empty for the paper's release, which lists none).
    sha256: String,
}

impl Masks {
    fn open(dir: &Path, annotations: Option<&Path>, bounds: Bounds) -> Result<Self> {
        let index = dir.join(dataset::INDEX_FILE);
        let records: Vec<MaskRecord> = if index.exists() {
            dataset::parse_index(&fsutil::shown(&index), &fsutil::read_text(&index)?)?
        } else {
            Self::paper_records(dir, annotations, bounds)?
        };
        let mut classes: BTreeMap<usize, ClassMasks> = BTreeMap::new();
        for r in records {
            let c = classes.entry(r.class).or_insert_with(|| ClassMasks { features: Vec::new() });
            let f = match c.features.iter().position(|f| f.feature == r.feature) {
                Some(i) => &mut c.features[i],
                None => {
                    let rank = c.features.len() + 1;
                    c.features.push(FeatureMasks { feature: r.feature, label: r.label, rank, images: Vec::new() });
                    c.features.last_mut().expect("just pushed")
                }
            };
            f.images.push(MaskRef { name: r.image, source: r.source, mask: r.mask, sha256: r.sha256 });
        }
        if classes.is_empty() {
            return Err(Error::Usage(format!("{}: the dataset holds no masks", dir.display())));
        }
        Ok(Masks { classes })
    }

    /// The paper's release: wordnet_dict.py, <wnid>/image_names_map.csv and JPEG masks, with
    /// labels from the annotations file.
    fn paper_records(dir: &Path, annotations: Option<&Path>, bounds: Bounds) -> Result<Vec<MaskRecord>> {
        let Some(ann) = annotations else {
            return Err(Error::Usage(format!(
                "{} has no {}: for the paper's release, give its labels with --annotations",
                dir.display(),
                dataset::INDEX_FILE
            )));
        };
        let labels = crate::pipeline::load_annotations(ann, bounds)?;
        Ok(dataset::release_records(dir, &labels)?)
    }
}

/// Accuracies of one unit of the test (a class under one kind of noise, or one pair).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Unit {
    class: usize,
    /// `None` for the whole-class experiments.
    feature: Option<usize>,
    rank: Option<usize>,
    label: Option<Label>,
    images: usize,
    clean: f64,
    /// Noisy accuracy per trial.
    noisy: Vec<f64>,
}

/// Everything one class contributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClassResult {
    class: usize,
    core_noise: Option<Unit>,
    spurious_noise: Option<Unit>,
    single: Vec<Unit>,
    skipped: Vec<Skipped>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    if !(args.sigma >= 0.0 && args.sigma.is_finite()) || args.trials == 0 {
        return Err(Error::Usage("--sigma must be a non-negative number and --trials at least 1".into()));
    }
    let engine = args.model.engine()?;
    let bounds = Bounds { classes: engine.config.num_classes, features: usize::MAX };
    let masks = Masks::open(&args.dataset, args.annotations.as_deref(), bounds)?;
    let index = args.dataset.join(dataset::INDEX_FILE);
    let dataset_id =
        if index.exists() { file_sha256(&index)? } else { format!("paper release at {}", args.dataset.display()) };
    let params = json!({
        "model": args.model.fingerprint()?,
        "dataset": dataset_id,
        "annotations": args.annotations.as_deref().map(file_sha256).transpose()?,
        "images": std::fs::canonicalize(&args.images).map_err(|e| salient_engine::Error::read(&args.images, e))?.display().to_string(),
        "sigma": args.sigma,
        "trials": args.trials,
        "seed": args.seed,
        "mask_quirk": args.mask_quirk,
    });
    Manifest { kind: "eval".into(), params }.claim(&args.out, args.resume)?;
    remove_stale_temporaries(&args.out)?;
    let part = |class: usize| args.out.join(STATE_DIR).join("classes").join(format!("{class}.json"));
    let total: usize = masks
        .classes
        .iter()
        .filter(|(c, _)| !part(**c).exists())
        .map(|(_, m)| m.features.iter().flat_map(|f| f.images.iter().map(|i| &i.name)).collect::<BTreeSet<_>>().len())
        .sum();
    let bar = progress::bar(total as u64, "images", false);
    for (&class, cm) in &masks.classes {
        if part(class).exists() {
            continue;
        }
        let result = eval_class(&engine, class, cm, &args, &bar)?;
        write(&part(class), (serde_json::to_string(&result).expect("plain data") + "\n").as_bytes())?;
    }
    bar.finish_and_clear();
    let results: Vec<ClassResult> = masks
        .classes
        .keys()
        .map(|&c| {
            let p = part(c);
            let text = salient_engine::fsutil::read_text(&p)?;
            serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: corrupt part ({e})", p.display())))
        })
        .collect::<Result<_>>()?;
    let summary = report(&engine, &results, &args)?;
    println!("{}", summary.trim_end());
    Ok(())
}

fn eval_class(
    engine: &Engine,
    class: usize,
    cm: &ClassMasks,
    args: &EvalArgs,
    bar: &indicatif::ProgressBar,
) -> Result<ClassResult> {
    // Paths in the index stay inside the images root and the dataset.
    let (images, masks_root) = (fsutil::Root::new(&args.images)?, fsutil::Root::new(&args.dataset)?);
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
        match images.join(source, "the dataset's index").and_then(|p| decode::load_image(&p)) {
            Ok(img) => {
                views.insert(name, engine.view.apply(&img));
            }
            Err(e) => skipped.push(Skipped { image: source.to_string(), reason: e.to_string() }),
        }
        bar.inc(1);
    }
    let names: Vec<&str> = views.keys().copied().collect();
    let clean_views: Vec<RgbImage> = names.iter().map(|n| views[n].clone()).collect();
    let mut clean: BTreeMap<&str, bool> = BTreeMap::new();
    for (chunk_names, chunk) in names.chunks(args.batch_size.max(1)).zip(clean_views.chunks(args.batch_size.max(1))) {
        let preds = predict(engine, engine.batch(chunk))?;
        for (n, p) in chunk_names.iter().zip(preds) {
            clean.insert(n, p == class);
        }
    }
    // A mask, checked against the SHA-256 the index gives for it.
    let mask_of = |r: &MaskRef| -> Result<GrayImage> {
        let path = masks_root.join(&r.mask, "the dataset's index")?;
        let bytes = fsutil::read_file(&path, decode::MAX_FILE_BYTES)?;
        if !r.sha256.is_empty() && bytes_sha256(&bytes) != r.sha256 {
            return Err(Error::Usage(format!(
                "{}: the mask's SHA-256 differs from the one in {}: the dataset was changed after it was built; rebuild it",
                fsutil::shown(&path),
                dataset::INDEX_FILE
            )));
        }
        let img = image::load_from_memory(&bytes)
            .map_err(|e| salient_engine::Error::image(&path, format!("cannot read the mask ({e})")))?;
        let gray = img.to_luma8();
        let side = engine.view.crop;
        if gray.dimensions() != (side, side) {
            return Err(Error::Usage(format!(
                "{}: the model sees {side}×{side} views, but this mask is {:?}",
                path.display(),
                gray.dimensions()
            )));
        }
        Ok(gray)
    };
    // A unit: images with, for each, the masks (pixelwise max) of the selected features that list it.
    let unit = |key: &str, selected: &[&FeatureMasks]| -> Result<Option<Unit>> {
        let mut per_image: BTreeMap<&str, GrayImage> = BTreeMap::new();
        for f in selected {
            for r in &f.images {
                if !views.contains_key(r.name.as_str()) {
                    continue;
                }
                let m = mask_of(r)?;
                per_image
                    .entry(&r.name)
                    .and_modify(|acc| acc.pixels_mut().zip(m.pixels()).for_each(|(a, b)| a.0[0] = a.0[0].max(b.0[0])))
                    .or_insert(m);
            }
        }
        if per_image.is_empty() {
            return Ok(None);
        }
        let items: Vec<(&str, Vec<f32>)> = per_image
            .into_iter()
            .map(|(n, m)| {
                let m = if args.mask_quirk { engine.view.apply_gray(&m) } else { m };
                (n, m.as_raw().iter().map(|v| f32::from(*v) / 255.0).collect())
            })
            .collect();
        let clean_acc = items.iter().filter(|(n, _)| clean[n]).count() as f64 / items.len() as f64;
        let mut noisy = Vec::new();
        for trial in 0..args.trials {
            let mut correct = 0usize;
            for chunk in items.chunks(args.batch_size.max(1)) {
                let imgs: Vec<RgbImage> = chunk.iter().map(|(n, _)| views[n].clone()).collect();
                let side = engine.view.side();
                let noise: Vec<Vec<f32>> = chunk
                    .iter()
                    .map(|(n, _)| gaussian_noise(args.seed, trial, &format!("{key}/{n}"), 3 * side * side))
                    .collect();
                let ms: Vec<Vec<f32>> = chunk.iter().map(|(_, m)| m.clone()).collect();
                let (m, z) = batch_tensors(engine, &ms, &noise, side);
                let x = add_masked_noise(engine.batch(&imgs), m, z, args.sigma);
                correct += predict(engine, x)?.into_iter().filter(|p| *p == class).count();
            }
            noisy.push(correct as f64 / items.len() as f64);
        }
        Ok(Some(Unit { class, feature: None, rank: None, label: None, images: items.len(), clean: clean_acc, noisy }))
    };
    let of = |l: Label| cm.features.iter().filter(|f| f.label == l).collect::<Vec<_>>();
    let core_noise = unit(&format!("core/{class}"), &of(Label::Core))?;
    let spurious_noise = unit(&format!("spurious/{class}"), &of(Label::Spurious))?;
    let mut single = Vec::new();
    for f in &cm.features {
        if let Some(mut u) = unit(&format!("single/{class}/{}", f.feature), &[f])? {
            u.feature = Some(f.feature);
            u.rank = Some(f.rank);
            u.label = Some(f.label);
            single.push(u);
        }
    }
    Ok(ClassResult { class, core_noise, spurious_noise, single, skipped })
}

/// Top-1 predictions of a batch.
fn predict(engine: &Engine, images: Tensor<4>) -> Result<Vec<usize>> {
    let logits = engine.logits(images);
    let [n, c] = logits.dims();
    let values = block_on(host(logits))?;
    Ok((0..n)
        .map(|i| {
            let row = &values[i * c..(i + 1) * c];
            (0..c).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a))).unwrap_or(0)
        })
        .collect())
}

/// Percent with three decimals, as the reference CSVs.
fn pct(x: f64) -> String {
    format!("{:.3}", x * 100.0)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn report(engine: &Engine, results: &[ClassResult], args: &EvalArgs) -> Result<String> {
    let name = |c: usize| engine.class_name(c);
    let sigma = format!("std_{}.csv", args.sigma);
    let (mut core_rows, mut spur_rows, mut single_rows, mut rcs_rows) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut points = Vec::new();
    for r in results {
        if let Some(u) = &r.core_noise {
            core_rows.push(vec![r.class.to_string(), name(r.class), pct(u.clean), pct(mean(&u.noisy))]);
        }
        if let Some(u) = &r.spurious_noise {
            spur_rows.push(vec![r.class.to_string(), name(r.class), pct(u.clean), pct(mean(&u.noisy))]);
        }
        for u in &r.single {
            single_rows.push(vec![
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
            rcs_rows.push(vec![
                r.class.to_string(),
                name(r.class),
                pct(core),
                pct(spur),
                format!("{:.4}", rcs(core, spur)),
            ]);
            points.push((r.class, core, spur));
        }
    }
    let core_csv = table::csv(&["class_index", "class_name", "clean_accuracy", "spurious_accuracy"], core_rows);
    let spur_csv = table::csv(&["class_index", "class_name", "clean_accuracy", "core_accuracy"], spur_rows);
    let single_csv = table::csv(
        &[
            "class_index",
            "feature_index",
            "feature_rank",
            "feature_label",
            "class_name",
            "clean_accuracy",
            "noisy_accuracy",
        ],
        single_rows,
    );
    let rcs_csv = table::csv(&["class_index", "class_name", "core_accuracy", "spurious_accuracy", "rcs"], rcs_rows);
    write(&args.out.join("noise_in_core_features").join(&sigma), core_csv.as_bytes())?;
    write(&args.out.join("noise_in_spurious_features").join(&sigma), spur_csv.as_bytes())?;
    write(&args.out.join("noise_in_single_feature").join(&sigma), single_csv.as_bytes())?;
    write(&args.out.join("rcs_per_class.csv"), rcs_csv.as_bytes())?;
    write(&args.out.join("core_vs_spurious.svg"), crate::plot::core_vs_spurious(&points, args.sigma).as_bytes())?;
    let skipped: Vec<Skipped> = results.iter().flat_map(|r| r.skipped.clone()).collect();
    write(&args.out.join("skipped.jsonl"), jsonl(&skipped).as_bytes())?;

    // Class-balanced accuracy per trial, then over trials.
    let per_trial = |pick: fn(&ClassResult) -> Option<&Unit>| -> Vec<f64> {
        (0..args.trials as usize)
            .map(|t| class_balanced(&results.iter().filter_map(pick).map(|u| u.noisy[t]).collect::<Vec<_>>()))
            .collect()
    };
    let spurious_acc = per_trial(|r| r.core_noise.as_ref());
    let core_acc = per_trial(|r| r.spurious_noise.as_ref());
    let rcs_trials: Vec<f64> = core_acc.iter().zip(&spurious_acc).map(|(c, s)| rcs(*c, *s)).collect();
    let clean = |pick: fn(&ClassResult) -> Option<&Unit>| {
        class_balanced(&results.iter().filter_map(pick).map(|u| u.clean).collect::<Vec<_>>())
    };
    let summary = json!({
        "sigma": args.sigma,
        "trials": args.trials,
        "seed": args.seed,
        "mask_quirk": args.mask_quirk,
        "classes_with_core_features": results.iter().filter(|r| r.core_noise.is_some()).count(),
        "classes_with_spurious_features": results.iter().filter(|r| r.spurious_noise.is_some()).count(),
        "clean_accuracy_core_images": clean(|r| r.core_noise.as_ref()),
        "clean_accuracy_spurious_images": clean(|r| r.spurious_noise.as_ref()),
        "spurious_accuracy": OverTrials::new(spurious_acc),
        "core_accuracy": OverTrials::new(core_acc),
        "rcs": OverTrials::new(rcs_trials),
        "images_skipped": skipped.len(),
    });
    let text = serde_json::to_string_pretty(&summary).expect("plain data") + "\n";
    write(&args.out.join("summary.json"), text.as_bytes())?;
    Ok(text)
}
