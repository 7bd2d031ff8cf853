//! Discovery: per-class feature importance over an ImageNet-layout folder, each class's top
//! features, their top-activating images, and what a person needs to judge each (class,
//! feature) pair (`salient discover`).
//!
//! One pass computes every image's features and the model's prediction into a compact cache
//! (`cache/<wnid>.f16` beside `cache/<wnid>.json`), so that ranking again never re-runs the
//! network. Per class (its predicted images, or its folder's: [`Group`]) features are ranked by
//! `FI(c, j) = mean r_j(x)·W[c, j]`; each top feature's highest-activating images are listed,
//! and the first few rendered (view, heatmap, feature attack) under `pairs/`. [`INDEX_FILE`]
//! ([`DiscoverIndex`]) lists it all.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use salient_engine::attack::AttackOptions;
use salient_engine::engine::{block_on, to_images};
use salient_engine::importance::{MeanFeatures, top_k};
use salient_engine::{Engine, colormap, encode, fsutil};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::batches;
use crate::error::{Error, Result};
use crate::files::{STATE_DIR, Skipped, jsonl, remove_stale_temporaries, write};
use crate::folder::{ClassDir, ImageFolder};
use crate::inputs::load_views;
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::shard::Shard;
use crate::top::TopN;

/// The run's index, in the output folder.
pub const INDEX_FILE: &str = "index.json";

/// Which images count as a class's: those the model predicts as it (the paper), or those in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Predicted,
    Label,
}

/// What to discover, and where.
#[derive(Debug, Clone)]
pub struct DiscoverParams {
    /// ImageNet-layout folder: `ROOT/<wnid>/<image>`.
    pub images: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Only these class folders (WordNet ids or indices).
    pub classes: Option<Vec<String>>,
    /// Features per class.
    pub top: usize,
    pub group: Group,
    /// Top-activating images listed per (class, feature).
    pub per_feature: usize,
    /// Images per pair rendered with heatmap and feature attack.
    pub show: usize,
    /// Feature-attack steps of the rendered images (0: none).
    pub attack_steps: usize,
    pub step_size: f32,
    /// A share of the class folders (feature cache only).
    pub shard: Shard,
    /// Continue a stopped run, or rank an existing cache again.
    pub resume: bool,
    /// Images per forward pass.
    pub batch_size: usize,
    /// What identifies the weights (their SHA-256).
    pub model: String,
}

/// One cached image: where it is (relative to the images root), its folder's class, the
/// model's prediction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedImage {
    pub image: String,
    pub label: usize,
    pub pred: usize,
    pub prob: f32,
}

/// The cache of one class folder: image facts here, features (f16, `[N, F]`) beside it.
#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    wnid: String,
    /// The model's number of classes and of features.
    classes: usize,
    features: usize,
    images: Vec<CachedImage>,
    skipped: Vec<Skipped>,
}

/// One cached class folder, read back.
pub struct Cached {
    pub wnid: String,
    /// The model's number of classes.
    pub classes: usize,
    /// F: features per image.
    pub features: usize,
    pub images: Vec<CachedImage>,
    pub skipped: Vec<Skipped>,
    /// `[N, F]` features, row-major.
    pub data: Vec<f32>,
}

/// One of a pair's top-activating images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopImage {
    /// Relative to the images root.
    pub image: String,
    pub activation: f32,
}

/// One rendered image of a pair: files relative to the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    pub image: String,
    pub view: String,
    pub heatmap: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
}

/// One of a class's top features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureEntry {
    pub feature: usize,
    /// 1-based.
    pub rank: usize,
    pub importance: f32,
    pub top_images: Vec<TopImage>,
    pub shown: Vec<Shown>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassEntry {
    pub class: usize,
    pub wnid: String,
    pub name: String,
    /// Images in the class's group.
    pub images: usize,
    pub features: Vec<FeatureEntry>,
}

/// [`INDEX_FILE`]: how the ranking was done, and per class its top features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverIndex {
    /// Version of this output's layout ([`crate::SCHEMA`]).
    #[serde(default = "crate::schema")]
    pub schema: u32,
    pub group: Group,
    pub top: usize,
    pub per_feature: usize,
    pub show: usize,
    pub attack_steps: usize,
    pub step_size: f32,
    pub classes: Vec<ClassEntry>,
}

impl DiscoverIndex {
    /// Reads a run's index.
    pub fn read(run: &Path) -> Result<Self> {
        let path = run.join(INDEX_FILE);
        serde_json::from_str(&fsutil::read_text(&path)?)
            .map_err(|e| Error::Data(format!("{}: not a discover index ({e})", fsutil::shown(&path))))
    }

    /// Its file's text.
    pub fn text(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data") + "\n"
    }
}

/// What a discover run did.
#[derive(Debug, Clone)]
pub enum Discovered {
    /// A shard cached its share of the features.
    Shard { shard: Shard, class_folders: usize, out: PathBuf },
    /// The whole run: features ranked, pairs rendered, the index written.
    Ranked(Ranked),
}

#[derive(Debug, Clone)]
pub struct Ranked {
    pub index: DiscoverIndex,
    /// Where the index was written.
    pub path: PathBuf,
    pub pairs: usize,
    /// Images in the cache.
    pub images: usize,
    pub skipped: usize,
}

impl fmt::Display for Discovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discovered::Shard { shard, class_folders, out } => write!(
                f,
                "shard {}/{}: features of {class_folders} class folders cached in {}; `salient merge` the shards, then run discover --resume on the result",
                shard.index,
                shard.count,
                out.display()
            ),
            Discovered::Ranked(r) => write!(
                f,
                "{} classes, {} (class, feature) pairs ranked over {} images ({} skipped); index in {}",
                r.index.classes.len(),
                r.pairs,
                r.images,
                r.skipped,
                r.path.display()
            ),
        }
    }
}

fn cache_dir(out: &Path) -> PathBuf {
    out.join("cache")
}

/// Runs discovery with `engine` (see the module's documentation). A shard stops after its
/// feature cache; a whole run ranks and renders.
pub fn discover(engine: &Engine, params: &DiscoverParams, progress: &dyn Progress) -> Result<Discovered> {
    let p = params;
    let folder = ImageFolder::scan(&p.images, engine.config.num_classes, p.classes.as_deref())?;
    let root = std::fs::canonicalize(&p.images).map_err(|e| salient_engine::Error::read(&p.images, e))?;
    let mut manifest = json!({
        "weights": p.model,
        "images": root.display().to_string(),
        "classes": p.classes,
    });
    if !p.shard.is_whole() {
        manifest["shard"] = json!(format!("{}/{}", p.shard.index, p.shard.count));
    }
    Manifest::new("discover", manifest).claim(&p.out, p.resume)?;
    remove_stale_temporaries(&p.out)?;

    // 1. The feature cache, one class folder at a time.
    let mine: Vec<&ClassDir> =
        folder.classes.iter().enumerate().filter(|(i, _)| p.shard.owns(*i)).map(|(_, c)| c).collect();
    let cached = |c: &ClassDir| cache_dir(&p.out).join(format!("{}.json", c.wnid)).exists();
    let remaining: usize = mine.iter().filter(|c| !cached(c)).map(|c| c.images.len()).sum();
    progress.start(remaining as u64, "images");
    for class in mine.iter().filter(|c| !cached(c)) {
        cache_class(engine, class, p, progress)?;
    }
    progress.finish();
    write(&p.out.join(STATE_DIR).join("complete"), b"")?;
    if !p.shard.is_whole() {
        return Ok(Discovered::Shard { shard: p.shard, class_folders: mine.len(), out: p.out.clone() });
    }
    rank_and_render(engine, &folder, p, progress).map(Discovered::Ranked)
}

fn cache_class(engine: &Engine, class: &ClassDir, p: &DiscoverParams, progress: &dyn Progress) -> Result<()> {
    let paths: Vec<PathBuf> = class.images.iter().map(|i| i.path.clone()).collect();
    let mut features: Vec<u8> = Vec::new();
    let mut entry = CacheEntry {
        wnid: class.wnid.clone(),
        classes: engine.config.num_classes,
        features: engine.config.feature_dim(),
        images: Vec::new(),
        skipped: class.skipped.clone(),
    };
    batches::run(engine, &paths, p.batch_size, false, |i, outcome| {
        progress.advance(1);
        let image = class.images[i].rel.clone();
        match outcome {
            Ok((_, out)) => {
                let (pred, prob) = out.top1();
                features.extend(out.features.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()));
                entry.images.push(CachedImage { image, label: class.index, pred, prob });
            }
            Err(e) => entry.skipped.push(Skipped { image, reason: e.to_string() }),
        }
        Ok::<_, Error>(())
    })?;
    let dir = cache_dir(&p.out);
    write(&dir.join(format!("{}.f16", class.wnid)), &features)?;
    // Written last: its presence means the folder is cached.
    write(
        &dir.join(format!("{}.json", class.wnid)),
        (serde_json::to_string(&entry).expect("plain data") + "\n").as_bytes(),
    )
}

/// Every cached class folder of a discover run, sorted by WordNet id.
pub fn cached_classes(run: &Path) -> Result<Vec<Cached>> {
    let dir = cache_dir(run);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        Error::Usage(format!("{}: no feature cache ({e}); is it a `salient discover` output?", run.display()))
    })?;
    let mut jsons: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    jsons.sort();
    jsons
        .into_iter()
        .map(|json| {
            let text = fsutil::read_text(&json)?;
            let entry: CacheEntry = serde_json::from_str(&text)
                .map_err(|e| Error::Data(format!("{}: corrupt cache ({e})", json.display())))?;
            let bin = json.with_extension("f16");
            let bytes = fsutil::read_file(&bin, fsutil::MAX_DATA_FILE_BYTES)?;
            if bytes.len() != entry.images.len() * entry.features * 2 {
                return Err(Error::Data(format!(
                    "{}: the feature cache does not match its index; delete both files and resume",
                    bin.display()
                )));
            }
            let data = bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
            Ok(Cached {
                wnid: entry.wnid,
                classes: entry.classes,
                features: entry.features,
                images: entry.images,
                skipped: entry.skipped,
                data,
            })
        })
        .collect()
}

fn rank_and_render(
    engine: &Engine,
    folder: &ImageFolder,
    p: &DiscoverParams,
    progress: &dyn Progress,
) -> Result<Ranked> {
    let cache = cached_classes(&p.out)?;
    let f = engine.config.feature_dim();
    let group_of = |img: &CachedImage| match p.group {
        Group::Predicted => img.pred,
        Group::Label => img.label,
    };
    // Importance: mean features per group.
    let mut means: BTreeMap<usize, MeanFeatures> = BTreeMap::new();
    for entry in &cache {
        for (img, row) in entry.images.iter().zip(entry.data.chunks_exact(f)) {
            means.entry(group_of(img)).or_default().add(row);
        }
    }
    let mut classes: Vec<ClassEntry> = Vec::new();
    for class in &folder.classes {
        let Some(mean) = means.get(&class.index) else { continue };
        let fi = mean.importance(engine.class_weights(class.index));
        let features = top_k(&fi, p.top)
            .into_iter()
            .enumerate()
            .map(|(r, (feature, importance))| FeatureEntry {
                feature,
                rank: r + 1,
                importance,
                top_images: Vec::new(),
                shown: Vec::new(),
            })
            .collect();
        classes.push(ClassEntry {
            class: class.index,
            wnid: class.wnid.clone(),
            name: engine.class_name(class.index),
            images: mean.count(),
            features,
        });
    }
    // Top images per pair, ties broken by image path.
    let position: BTreeMap<usize, usize> = classes.iter().enumerate().map(|(i, c)| (c.class, i)).collect();
    let mut tops: Vec<Vec<TopN<&str, ()>>> =
        classes.iter().map(|c| c.features.iter().map(|_| TopN::new(p.per_feature)).collect()).collect();
    for entry in &cache {
        for (img, row) in entry.images.iter().zip(entry.data.chunks_exact(f)) {
            let Some(&ci) = position.get(&group_of(img)) else { continue };
            for (fe, top) in classes[ci].features.iter().zip(&mut tops[ci]) {
                top.offer(row[fe.feature], img.image.as_str(), ());
            }
        }
    }
    for (class, tops) in classes.iter_mut().zip(tops) {
        for (fe, top) in class.features.iter_mut().zip(tops) {
            fe.top_images = top
                .into_items()
                .into_iter()
                .map(|(activation, image, ())| TopImage { image: image.to_owned(), activation })
                .collect();
        }
    }
    // Render what annotators see.
    let pairs: usize = classes.iter().map(|c| c.features.len()).sum();
    progress.start(pairs as u64, "pairs");
    for class in &mut classes {
        for fe in &mut class.features {
            fe.shown = render_pair(engine, folder, class.class, fe, p)?;
            progress.advance(1);
        }
    }
    progress.finish();
    let skipped: Vec<Skipped> = cache.iter().flat_map(|e| e.skipped.clone()).collect();
    write(&p.out.join("skipped.jsonl"), jsonl(&skipped).as_bytes())?;
    let index = DiscoverIndex {
        schema: crate::SCHEMA,
        group: p.group,
        top: p.top,
        per_feature: p.per_feature,
        show: p.show,
        attack_steps: p.attack_steps,
        step_size: p.step_size,
        classes,
    };
    let path = p.out.join(INDEX_FILE);
    write(&path, index.text().as_bytes())?;
    let images = cache.iter().map(|e| e.images.len()).sum();
    Ok(Ranked { index, path, pairs, images, skipped: skipped.len() })
}

/// Renders a pair's first `show` images (view, heatmap, attack) unless an identical render
/// is already there.
fn render_pair(
    engine: &Engine,
    folder: &ImageFolder,
    class: usize,
    fe: &FeatureEntry,
    p: &DiscoverParams,
) -> Result<Vec<Shown>> {
    let dir = format!("pairs/{class}_{}", fe.feature);
    let images: Vec<&TopImage> = fe.top_images.iter().take(p.show).collect();
    let key = json!({
        "images": images.iter().map(|t| &t.image).collect::<Vec<_>>(),
        "attack_steps": p.attack_steps,
        "step_size": p.step_size,
    })
    .to_string();
    let marker = p.out.join(&dir).join("render.json");
    let shown: Vec<Shown> = images
        .iter()
        .enumerate()
        .map(|(k, t)| Shown {
            image: t.image.clone(),
            view: format!("{dir}/{k}_view.jpg"),
            heatmap: format!("{dir}/{k}_heatmap.png"),
            attack: (p.attack_steps > 0).then(|| format!("{dir}/{k}_attack.png")),
        })
        .collect();
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == key) {
        return Ok(shown);
    }
    let paths: Vec<PathBuf> = images.iter().map(|t| folder.root.join(&t.image)).collect();
    let views: Vec<RgbImage> = load_views(&paths, engine.view).into_iter().collect::<std::result::Result<_, _>>()?;
    let outs = engine.infer(&views, true)?;
    for ((s, view), out) in shown.iter().zip(&views).zip(&outs) {
        let mask = out.maps.as_ref().expect("maps were asked for").soft_mask(&[fe.feature], engine.view.side());
        // The `image` crate's default JPEG quality.
        write(&p.out.join(&s.view), &encode::jpeg(&DynamicImage::ImageRgb8(view.clone()), 75)?)?;
        write(&p.out.join(&s.heatmap), &encode::png(&DynamicImage::ImageRgb8(colormap::overlay(view, &mask)))?)?;
    }
    if p.attack_steps > 0 {
        let options = AttackOptions { steps: p.attack_steps, step_size: p.step_size };
        let attacked = engine.attack(engine.batch(&views), fe.feature, options, |_| {});
        for (s, img) in shown.iter().zip(block_on(to_images(attacked.images))?) {
            let path = p.out.join(s.attack.as_ref().expect("attack on"));
            write(&path, &encode::png(&DynamicImage::ImageRgb8(img))?)?;
        }
    }
    write(&marker, key.as_bytes())?;
    Ok(shown)
}

/// After `merge` of discover shards: the caches are joined; ranking is the next step.
pub fn merged_message(out: &Path) -> String {
    format!(
        "feature caches joined; rank them with `salient discover --resume -o {} --images ROOT --weights W` (same --images, --classes and weights)",
        out.display()
    )
}
