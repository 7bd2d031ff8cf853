//! `salient build`: the Salient ImageNet dataset — soft masks for every annotated
//! (class, feature) pair, in the paper's layout plus lossless PNGs and an index.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat};
use salient_engine::annotations::{Bounds, Label, Pair};
use salient_engine::dataset::{self, MaskRecord};
use salient_engine::nam;
use serde::{Deserialize, Serialize};
use serde_json::json;

use salient_pipeline::batches;
use crate::error::{Error, Result};
use crate::model::ModelArgs;
use salient_pipeline::folder::{ClassDir, ImageFolder, parse_class_list};
use salient_pipeline::manifest::{Manifest, bytes_sha256};
use salient_pipeline::shard::Shard;
use salient_pipeline::files::{STATE_DIR, Skipped, jsonl, remove_stale_temporaries, write};
use crate::progress;

/// Build the Salient ImageNet dataset from annotations.
///
/// For each annotated (class, feature) pair, ranks the class's images (its folder under
/// --images) by the feature's activation and writes the top --per-feature images' soft masks:
/// the paper's layout (wordnet_dict.py, <wnid>/image_names_map.csv,
/// <wnid>/feature_<j>/<image>.JPEG, so existing loaders work unchanged), the same masks as
/// lossless PNGs, and index.jsonl (class, feature, label, image, activation, mask, SHA-256)
/// for `salient eval` and the explorer. One pass over the images; every file is written
/// atomically; a run stopped at any point (even by kill -9) continues with --resume and ends
/// byte-identical to an uninterrupted one. Images that cannot be read are listed, with the
/// reason, in skipped.jsonl.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// ImageNet-layout folder: ROOT/<wnid>/<image>.JPEG (usually imagenet/train).
    #[arg(long, value_name = "ROOT")]
    pub images: PathBuf,

    /// Labels: the paper's discover_spurious_features.csv, or a Salient CSV (class,feature,label).
    #[arg(long, value_name = "FILE")]
    pub annotations: PathBuf,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "DATASET")]
    pub out: PathBuf,

    /// Images per (class, feature) pair.
    #[arg(long, default_value_t = 65, value_name = "N")]
    pub per_feature: usize,

    /// Only these classes: comma-separated WordNet ids or indices, or @FILE.
    #[arg(long, value_name = "LIST")]
    pub classes: Option<String>,

    /// Do share I of N of the classes (see also $SLURM_ARRAY_TASK_ID, $JOB_COMPLETION_INDEX).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Continue a run stopped part-way (the output folder must hold the same job).
    #[arg(long)]
    pub resume: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch_size: usize,
}

/// One image among a pair's best so far.
struct Candidate {
    activation: f32,
    image: usize,
    /// The feature's normalized `h × w` map on this image.
    map: Vec<f32>,
}

/// The `n` highest activations, ties broken by image order (so the result never depends on
/// batching).
struct TopN {
    n: usize,
    best: Vec<Candidate>,
}

impl TopN {
    fn offer(&mut self, c: Candidate) {
        let better = |a: &Candidate, b: &Candidate| {
            a.activation > b.activation || (a.activation == b.activation && a.image < b.image)
        };
        if self.best.len() == self.n && !self.best.last().is_some_and(|last| better(&c, last)) {
            return;
        }
        let at = self.best.iter().position(|b| better(&c, b)).unwrap_or(self.best.len());
        self.best.insert(at, c);
        self.best.truncate(self.n);
    }
}

fn state(out: &Path) -> PathBuf {
    out.join(STATE_DIR)
}

pub fn run(args: BuildArgs) -> Result<()> {
    if args.per_feature == 0 {
        return Err(Error::Usage("--per-feature must be at least 1".into()));
    }
    let shard = Shard::resolve(args.shard.as_deref())?;
    let engine = args.model.engine()?;
    let bounds = Bounds { classes: engine.config.num_classes, features: engine.config.feature_dim() };
    let annotations = salient_pipeline::files::load_annotations(&args.annotations, bounds)?;
    let only = args.classes.as_deref().map(parse_class_list).transpose()?;
    let folder = ImageFolder::scan(&args.images, bounds.classes, only.as_deref())?;
    let by_class = annotations.by_class();
    let todo: Vec<(&ClassDir, &Vec<&Pair>)> =
        folder.classes.iter().filter_map(|c| by_class.get(&c.index).map(|p| (c, p))).collect();
    if todo.is_empty() {
        return Err(Error::Usage(format!(
            "none of the class folders under {} has annotations in {}",
            args.images.display(),
            args.annotations.display()
        )));
    }
    let root = std::fs::canonicalize(&args.images).map_err(|e| salient_engine::Error::read(&args.images, e))?;
    let mut params = json!({
        "weights": args.model.fingerprint()?,
        "images": root.display().to_string(),
        "annotations": salient_pipeline::manifest::file_sha256(&args.annotations)?,
        "per_feature": args.per_feature,
        "classes": only,
        "view": engine.view.to_text(),
    });
    if !shard.is_whole() {
        params["shard"] = json!(format!("{}/{}", shard.index, shard.count));
    }
    let manifest = Manifest { kind: "build".into(), params };
    manifest.claim(&args.out, args.resume)?;
    remove_stale_temporaries(&args.out)?;

    let mine: Vec<&(&ClassDir, &Vec<&Pair>)> =
        todo.iter().enumerate().filter(|(i, _)| shard.owns(*i)).map(|(_, c)| c).collect();
    let done = |c: &ClassDir| part_path(&args.out, &c.wnid).exists();
    let remaining: usize = mine.iter().filter(|(c, _)| !done(c)).map(|(c, _)| c.images.len()).sum();
    let bar = progress::bar(remaining as u64, "images", false);
    for (class, pairs) in &mine {
        if !done(class) {
            build_class(&engine, class, pairs, &args, &bar)?;
        }
    }
    bar.finish_and_clear();
    write(&state(&args.out).join("complete"), b"")?;
    if shard.is_whole() {
        let summary = finalize(&args.out)?;
        println!("{}", summary.trim_end());
        println!("dataset written to {}", args.out.display());
    } else {
        println!(
            "shard {}/{}: {} classes done in {}; join the shards with `salient merge`",
            shard.index,
            shard.count,
            mine.len(),
            args.out.display()
        );
    }
    Ok(())
}

/// One class: one pass over its images keeping each pair's best, then the masks.
fn build_class(
    engine: &salient_engine::Engine,
    class: &ClassDir,
    pairs: &[&Pair],
    args: &BuildArgs,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let mut tops: Vec<TopN> = pairs.iter().map(|_| TopN { n: args.per_feature, best: Vec::new() }).collect();
    let mut skipped = class.skipped.clone();
    let paths: Vec<PathBuf> = class.images.iter().map(|i| i.path.clone()).collect();
    batches::run(engine, &paths, args.batch_size, true, |i, outcome| {
        bar.inc(1);
        match outcome {
            Ok((_, out)) => {
                let maps = out.maps.as_ref().expect("maps were asked for");
                for (pair, top) in pairs.iter().zip(&mut tops) {
                    let activation = out.features[pair.feature];
                    top.offer(Candidate { activation, image: i, map: maps.normalized(pair.feature) });
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
        for (position, c) in top.best.iter().enumerate() {
            let image = &class.images[c.image];
            let (mh, mw) = map_side(c.map.len()).unwrap_or((h, w));
            let mask = nam::upsample_bilinear(&c.map, mh, mw, side, side);
            let gray = GrayImage::from_raw(side as u32, side as u32, nam::to_gray(&mask)).expect("sized mask");
            let png = encode(&gray, ImageFormat::Png)?;
            let jpeg = encode_jpeg(&gray)?;
            let png_rel = dataset::mask_path(&class.wnid, pair.feature, &image.name, "png");
            write(&args.out.join(&png_rel), &png)?;
            write(&args.out.join(dataset::mask_path(&class.wnid, pair.feature, &image.name, "JPEG")), &jpeg)?;
            records.push(MaskRecord {
                class: class.index,
                wnid: class.wnid.clone(),
                feature: pair.feature,
                label: pair.label,
                position,
                rank: pair.rank,
                image: image.name.clone(),
                source: image.rel.clone(),
                activation: c.activation,
                mask: png_rel,
                sha256: bytes_sha256(&png),
            });
            names.push(image.name.clone());
        }
        columns.push((pair.feature, names));
    }
    write(&args.out.join(&class.wnid).join(dataset::NAMES_MAP_FILE), dataset::names_map_csv(&columns).as_bytes())?;
    let part = ClassPart {
        class: class.index,
        wnid: class.wnid.clone(),
        pairs: pairs.iter().map(|p| (p.feature, p.label)).collect(),
        records,
        skipped,
    };
    // Written last: its presence means the class is done.
    Ok(write(&part_path(&args.out, &class.wnid), (serde_json::to_string(&part).expect("plain data") + "\n").as_bytes())?)
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

fn encode(img: &GrayImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    DynamicImage::ImageLuma8(img.clone())
        .write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .map_err(|e| Error::Usage(format!("cannot encode a mask: {e}")))?;
    Ok(bytes)
}

/// The paper's masks are grayscale JPEGs; quality 95 keeps them within a few levels of the PNG.
fn encode_jpeg(img: &GrayImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95)
        .encode_image(img)
        .map_err(|e| Error::Usage(format!("cannot encode a mask: {e}")))?;
    Ok(bytes)
}

#[derive(Serialize)]
struct Summary {
    classes: usize,
    pairs: usize,
    core_pairs: usize,
    spurious_pairs: usize,
    masks: usize,
    images_skipped: usize,
}

/// Joins the finished classes' parts into index.jsonl, skipped.jsonl, wordnet_dict.py and
/// summary.json, in class order. A whole run and `merge` both end here; the result depends
/// only on the parts.
pub fn finalize(out: &Path) -> Result<String> {
    let dir = state(out).join("parts");
    let entries = std::fs::read_dir(&dir).map_err(|e| salient_engine::Error::read(&dir, e))?;
    let mut parts: Vec<ClassPart> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| salient_engine::Error::read(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = salient_engine::fsutil::read_text(&path)?;
            parts.push(
                serde_json::from_str(&text)
                    .map_err(|e| Error::Usage(format!("{}: corrupt class part ({e})", path.display())))?,
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
    let summary = Summary {
        classes: parts.len(),
        pairs: labels.len(),
        core_pairs: labels.iter().filter(|l| **l == Label::Core).count(),
        spurious_pairs: labels.iter().filter(|l| **l == Label::Spurious).count(),
        masks: records.len(),
        images_skipped: skipped.len(),
    };
    let text = serde_json::to_string_pretty(&summary).expect("plain data") + "\n";
    write(&out.join("summary.json"), text.as_bytes())?;
    Ok(text)
}
