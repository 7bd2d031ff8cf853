//! The Salient ImageNet dataset from annotations (`salient build`): for each annotated
//! (class, feature) pair, the class's images ranked by the feature's activation and the top
//! ones' soft masks, in the paper's layout (`wordnet_dict.py`, `<wnid>/image_names_map.csv`,
//! `<wnid>/feature_<j>/<image>.JPEG`) plus lossless PNGs and `index.jsonl`.
//!
//! One pass over the images; every file is written atomically; each finished class leaves a
//! part under `.salient/parts/`, and [`finalize`] joins the parts, so a stopped, resumed or
//! sharded run ends byte-identical to an uninterrupted one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage};
use salient_engine::annotations::{Bounds, Label, Pair};
use salient_engine::dataset::{self, MaskRecord};
use salient_engine::{Engine, encode, fsutil, nam};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::batches;
use crate::error::{Error, Result};
use crate::files::{STATE_DIR, Skipped, jsonl, load_annotations_reporting, remove_stale_temporaries, write};
use crate::folder::{ClassDir, ImageFolder};
use crate::manifest::{Manifest, bytes_sha256, file_sha256};
use crate::progress::Progress;
use crate::shard::Shard;
use crate::top::TopN;

/// The dataset's `summary.json`.
pub const SUMMARY_FILE: &str = "summary.json";

/// What to build, and where.
#[derive(Debug, Clone)]
pub struct BuildParams {
    /// ImageNet-layout folder: `ROOT/<wnid>/<image>` (usually `imagenet/train`).
    pub images: PathBuf,
    /// Labels: the paper's MTurk CSV or a Salient CSV.
    pub annotations: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Images per (class, feature) pair; at least 1.
    pub per_feature: usize,
    /// Only these classes (WordNet ids or indices).
    pub classes: Option<Vec<String>>,
    pub shard: Shard,
    /// Continue a stopped run of the same job.
    pub resume: bool,
    /// Images per forward pass.
    pub batch_size: usize,
    /// What identifies the weights (their SHA-256).
    pub model: String,
}

/// The dataset's [`SUMMARY_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSummary {
    /// Version of this output's layout ([`crate::SCHEMA`]).
    #[serde(default = "crate::schema")]
    pub schema: u32,
    pub classes: usize,
    pub pairs: usize,
    pub core_pairs: usize,
    pub spurious_pairs: usize,
    pub masks: usize,
    pub images_skipped: usize,
}

impl BuildSummary {
    /// Its file's text.
    pub fn text(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data") + "\n"
    }

    pub fn read(dataset: &Path) -> Result<Self> {
        let path = dataset.join(SUMMARY_FILE);
        serde_json::from_str(&fsutil::read_text(&path)?)
            .map_err(|e| Error::Data(format!("{}: not a build summary ({e})", fsutil::shown(&path))))
    }
}

/// What a build run did.
#[derive(Debug, Clone)]
pub enum Built {
    /// A shard finished its classes; `merge` joins the shards.
    Shard { shard: Shard, classes: usize, out: PathBuf },
    /// The whole dataset, its index files written.
    Dataset { summary: BuildSummary, out: PathBuf },
}

impl fmt::Display for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Built::Shard { shard, classes, out } => write!(
                f,
                "shard {}/{}: {classes} classes done in {}; join the shards with `salient merge`",
                shard.index,
                shard.count,
                out.display()
            ),
            Built::Dataset { summary, out } => {
                write!(f, "{}\ndataset written to {}", summary.text().trim_end(), out.display())
            }
        }
    }
}

fn state(out: &Path) -> PathBuf {
    out.join(STATE_DIR)
}

/// Builds the dataset with `engine` (see the module's documentation).
pub fn build(engine: &Engine, params: &BuildParams, progress: &dyn Progress) -> Result<Built> {
    let p = params;
    if p.per_feature == 0 {
        return Err(Error::Usage("--per-feature must be at least 1".into()));
    }
    let bounds = Bounds { classes: engine.config.num_classes, features: engine.config.feature_dim() };
    let annotations = load_annotations_reporting(&p.annotations, bounds, progress)?;
    let folder = ImageFolder::scan(&p.images, bounds.classes, p.classes.as_deref())?;
    let by_class = annotations.by_class();
    let todo: Vec<(&ClassDir, &Vec<&Pair>)> =
        folder.classes.iter().filter_map(|c| by_class.get(&c.index).map(|pairs| (c, pairs))).collect();
    if todo.is_empty() {
        return Err(Error::Data(format!(
            "none of the class folders under {} has annotations in {}",
            p.images.display(),
            p.annotations.display()
        )));
    }
    let root = std::fs::canonicalize(&p.images).map_err(|e| salient_engine::Error::read(&p.images, e))?;
    let mut manifest = json!({
        "weights": p.model,
        "images": root.display().to_string(),
        "annotations": file_sha256(&p.annotations)?,
        "per_feature": p.per_feature,
        "classes": p.classes,
        "view": engine.view.to_text(),
    });
    if !p.shard.is_whole() {
        manifest["shard"] = json!(format!("{}/{}", p.shard.index, p.shard.count));
    }
    Manifest::new("build", manifest).claim(&p.out, p.resume)?;
    remove_stale_temporaries(&p.out)?;

    let mine: Vec<&(&ClassDir, &Vec<&Pair>)> =
        todo.iter().enumerate().filter(|(i, _)| p.shard.owns(*i)).map(|(_, c)| c).collect();
    let done = |c: &ClassDir| part_path(&p.out, &c.wnid).exists();
    let remaining: usize = mine.iter().filter(|(c, _)| !done(c)).map(|(c, _)| c.images.len()).sum();
    progress.start(remaining as u64, "images");
    for (class, pairs) in &mine {
        if !done(class) {
            build_class(engine, class, pairs, p, progress)?;
        }
    }
    progress.finish();
    write(&state(&p.out).join("complete"), b"")?;
    if p.shard.is_whole() {
        Ok(Built::Dataset { summary: finalize(&p.out)?, out: p.out.clone() })
    } else {
        Ok(Built::Shard { shard: p.shard, classes: mine.len(), out: p.out.clone() })
    }
}

/// One class: one pass over its images keeping each pair's best, then the masks.
fn build_class(
    engine: &Engine,
    class: &ClassDir,
    pairs: &[&Pair],
    p: &BuildParams,
    progress: &dyn Progress,
) -> Result<()> {
    // Per pair, the best images so far (ties broken by image order, so the result never
    // depends on batching) with the feature's normalized map on each.
    let mut tops: Vec<TopN<usize, Vec<f32>>> = pairs.iter().map(|_| TopN::new(p.per_feature)).collect();
    let mut skipped = class.skipped.clone();
    let paths: Vec<PathBuf> = class.images.iter().map(|i| i.path.clone()).collect();
    batches::run(engine, &paths, p.batch_size, true, |i, outcome| {
        progress.advance(1);
        match outcome {
            Ok((_, out)) => {
                let maps = out.maps.as_ref().expect("maps were asked for");
                for (pair, top) in pairs.iter().zip(&mut tops) {
                    top.offer_with(out.features[pair.feature], i, || maps.normalized(pair.feature));
                }
            }
            Err(e) => skipped.push(Skipped { image: class.images[i].rel.clone(), reason: e.to_string() }),
        }
        Ok::<_, Error>(())
    })?;

    let side = engine.view.side();
    let (h, w) = (7, 7);
    let mut records = Vec::new();
    let mut columns = Vec::new();
    for (pair, top) in pairs.iter().zip(&tops) {
        let mut names = Vec::new();
        for (position, (activation, i, map)) in top.items().iter().enumerate() {
            let image = &class.images[*i];
            let (mh, mw) = map_side(map.len()).unwrap_or((h, w));
            let mask = nam::upsample_bilinear(map, mh, mw, side, side);
            let gray = DynamicImage::ImageLuma8(
                GrayImage::from_raw(side as u32, side as u32, nam::to_gray(&mask)).expect("sized mask"),
            );
            let png = encode::png(&gray)?;
            // The paper's masks are grayscale JPEGs; quality 95 keeps them within a few levels of the PNG.
            let jpeg = encode::jpeg(&gray, 95)?;
            let png_rel = dataset::mask_path(&class.wnid, pair.feature, &image.name, "png");
            write(&p.out.join(&png_rel), &png)?;
            write(&p.out.join(dataset::mask_path(&class.wnid, pair.feature, &image.name, "JPEG")), &jpeg)?;
            records.push(MaskRecord {
                class: class.index,
                wnid: class.wnid.clone(),
                feature: pair.feature,
                label: pair.label,
                position,
                rank: pair.rank,
                image: image.name.clone(),
                source: image.rel.clone(),
                activation: *activation,
                mask: png_rel,
                sha256: bytes_sha256(&png),
            });
            names.push(image.name.clone());
        }
        columns.push((pair.feature, names));
    }
    write(&p.out.join(&class.wnid).join(dataset::NAMES_MAP_FILE), dataset::names_map_csv(&columns).as_bytes())?;
    let part = ClassPart {
        class: class.index,
        wnid: class.wnid.clone(),
        pairs: pairs.iter().map(|p| (p.feature, p.label)).collect(),
        records,
        skipped,
    };
    // Written last: its presence means the class is done.
    write(&part_path(&p.out, &class.wnid), (serde_json::to_string(&part).expect("plain data") + "\n").as_bytes())
}

/// Everything a finished class contributes to the dataset's index files.
#[derive(Serialize, Deserialize)]
struct ClassPart {
    class: usize,
    wnid: String,
    pairs: Vec<(usize, Label)>,
    records: Vec<MaskRecord>,
    skipped: Vec<Skipped>,
}

fn part_path(out: &Path, wnid: &str) -> PathBuf {
    state(out).join("parts").join(format!("{wnid}.json"))
}

/// `(h, w)` of a square map of `len` values.
fn map_side(len: usize) -> Option<(usize, usize)> {
    let s = (len as f64).sqrt().round() as usize;
    (s * s == len).then_some((s, s))
}

/// Joins the finished classes' parts into index.jsonl, skipped.jsonl, wordnet_dict.py and
/// summary.json, in class order. A whole run and `merge` both end here; the result depends
/// only on the parts.
pub fn finalize(out: &Path) -> Result<BuildSummary> {
    let dir = state(out).join("parts");
    let entries = std::fs::read_dir(&dir).map_err(|e| salient_engine::Error::read(&dir, e))?;
    let mut parts: Vec<ClassPart> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| salient_engine::Error::read(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = fsutil::read_text(&path)?;
            parts.push(
                serde_json::from_str(&text)
                    .map_err(|e| Error::Data(format!("{}: corrupt class part ({e})", path.display())))?,
            );
        }
    }
    parts.sort_by_key(|p| p.class);
    let records: Vec<MaskRecord> = parts.iter().flat_map(|p| p.records.clone()).collect();
    let skipped: Vec<Skipped> = parts.iter().flat_map(|p| p.skipped.clone()).collect();
    let wnids: BTreeMap<usize, String> = parts.iter().map(|p| (p.class, p.wnid.clone())).collect();
    write(&out.join(dataset::INDEX_FILE), dataset::index_text(&records).as_bytes())?;
    write(&out.join("skipped.jsonl"), jsonl(&skipped).as_bytes())?;
    write(&out.join(dataset::WORDNET_DICT_FILE), dataset::wordnet_dict_py(&wnids).as_bytes())?;
    let labels: Vec<Label> = parts.iter().flat_map(|p| p.pairs.iter().map(|(_, l)| *l)).collect();
    let summary = BuildSummary {
        schema: crate::SCHEMA,
        classes: parts.len(),
        pairs: labels.len(),
        core_pairs: labels.iter().filter(|l| **l == Label::Core).count(),
        spurious_pairs: labels.iter().filter(|l| **l == Label::Spurious).count(),
        masks: records.len(),
        images_skipped: skipped.len(),
    };
    write(&out.join(SUMMARY_FILE), summary.text().as_bytes())?;
    Ok(summary)
}
