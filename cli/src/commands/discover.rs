//! `salient discover`: per-class feature importance over a dataset, the top features, their
//! top-activating images, and what a person needs to judge each (class, feature) pair.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use image::{DynamicImage, ImageFormat, RgbImage};
use salient_engine::attack::{AttackOptions, feature_attack};
use salient_engine::engine::{block_on, to_images};
use salient_engine::importance::{MeanFeatures, top_k};
use salient_engine::{Engine, colormap};
use serde::{Deserialize, Serialize};
use serde_json::json;

use salient_pipeline::batches;
use crate::error::{Error, Result};
use salient_pipeline::inputs::load_views;
use crate::model::ModelArgs;
use salient_pipeline::folder::{ClassDir, ImageFolder, parse_class_list};
use salient_pipeline::manifest::Manifest;
use salient_pipeline::shard::Shard;
use salient_pipeline::files::{STATE_DIR, Skipped, jsonl, remove_stale_temporaries, write};
use crate::progress;

/// Which images count as a class's: those the model predicts as it (the paper), or those in its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Predicted,
    Label,
}

/// Find each class's most important neural features and their top images, for annotation.
///
/// One pass over an ImageNet-layout folder computes every image's 2048 features and the
/// model's prediction, kept in a compact cache (cache/<wnid>.f16) so that ranking again — other
/// --top, --group, --per-feature — never re-runs the network. Per class c (the images predicted
/// as c, or --group label: its folder), features are ranked by FI(c,j) = mean r_j(x)·W[c,j]; for
/// each of the top ones, its --per-feature highest-activating images are listed, and the first
/// --show are rendered with their heatmaps and feature-attack images into pairs/, as the
/// paper's annotators saw them. index.json lists it all. Missing or unreadable images are listed
/// in skipped.jsonl. With --shard, only the feature cache is computed: `salient merge` the
/// shards, then run discover --resume on the merged folder to rank.
#[derive(clap::Args, Debug)]
pub struct DiscoverArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// ImageNet-layout folder: ROOT/<wnid>/<image>.JPEG.
    #[arg(long, value_name = "ROOT")]
    images: PathBuf,

    /// Output folder.
    #[arg(long, short = 'o', value_name = "RUN")]
    out: PathBuf,

    /// Only these class folders: comma-separated WordNet ids or indices, or @FILE.
    #[arg(long, value_name = "LIST")]
    classes: Option<String>,

    /// Features per class.
    #[arg(long, default_value_t = 5, value_name = "K")]
    top: usize,

    /// A class's images: those predicted as it (the paper's choice) or its folder's.
    #[arg(long, value_enum, default_value_t = Group::Predicted)]
    group: Group,

    /// Top-activating images listed per (class, feature).
    #[arg(long, default_value_t = 65, value_name = "N")]
    per_feature: usize,

    /// Images per pair rendered with heatmap and feature attack (the paper shows 5).
    #[arg(long, default_value_t = 5, value_name = "N")]
    show: usize,

    /// Feature-attack steps for the rendered images (0: no attack images).
    #[arg(long, default_value_t = 100, value_name = "N")]
    attack_steps: usize,

    /// Feature-attack step size.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    step_size: f32,

    /// Do share I of N of the class folders (feature cache only).
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,

    /// Continue a stopped run, or rank an existing cache again with other settings.
    #[arg(long)]
    resume: bool,

    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_name = "N")]
    batch_size: usize,
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

fn cache_dir(out: &Path) -> PathBuf {
    out.join("cache")
}

pub fn run(args: DiscoverArgs) -> Result<()> {
    let shard = Shard::resolve(args.shard.as_deref())?;
    let engine = args.model.engine()?;
    let only = args.classes.as_deref().map(parse_class_list).transpose()?;
    let folder = ImageFolder::scan(&args.images, engine.config.num_classes, only.as_deref())?;
    let root = std::fs::canonicalize(&args.images).map_err(|e| salient_engine::Error::read(&args.images, e))?;
    let mut params = json!({
        "weights": args.model.fingerprint()?,
        "images": root.display().to_string(),
        "classes": only,
    });
    if !shard.is_whole() {
        params["shard"] = json!(format!("{}/{}", shard.index, shard.count));
    }
    Manifest { kind: "discover".into(), params }.claim(&args.out, args.resume)?;
    remove_stale_temporaries(&args.out)?;

    // 1. The feature cache, one class folder at a time.
    let mine: Vec<&ClassDir> =
        folder.classes.iter().enumerate().filter(|(i, _)| shard.owns(*i)).map(|(_, c)| c).collect();
    let cached = |c: &ClassDir| cache_dir(&args.out).join(format!("{}.json", c.wnid)).exists();
    let remaining: usize = mine.iter().filter(|c| !cached(c)).map(|c| c.images.len()).sum();
    let bar = progress::bar(remaining as u64, "images", false);
    for class in mine.iter().filter(|c| !cached(c)) {
        cache_class(&engine, class, &args, &bar)?;
    }
    bar.finish_and_clear();
    write(&args.out.join(STATE_DIR).join("complete"), b"")?;
    if !shard.is_whole() {
        println!(
            "shard {}/{}: features of {} class folders cached in {}; `salient merge` the shards, then run discover --resume on the result",
            shard.index,
            shard.count,
            mine.len(),
            args.out.display()
        );
        return Ok(());
    }
    rank_and_render(&engine, &folder, &args)
}

fn cache_class(engine: &Engine, class: &ClassDir, args: &DiscoverArgs, bar: &indicatif::ProgressBar) -> Result<()> {
    let paths: Vec<PathBuf> = class.images.iter().map(|i| i.path.clone()).collect();
    let f = engine.config.feature_dim();
    let mut features: Vec<u8> = Vec::new();
    let classes = engine.config.num_classes;
    let mut entry = CacheEntry {
        wnid: class.wnid.clone(),
        classes,
        features: f,
        images: Vec::new(),
        skipped: class.skipped.clone(),
    };
    batches::run(engine, &paths, args.batch_size, false, |i, outcome| {
        bar.inc(1);
        let image = class.images[i].rel.clone();
        match outcome {
            Ok((_, out)) => {
                let (pred, prob) = out.top(1)[0];
                features.extend(out.features.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()));
                entry.images.push(CachedImage { image, label: class.index, pred, prob });
            }
            Err(e) => entry.skipped.push(Skipped { image, reason: e.to_string() }),
        }
        Ok::<_, Error>(())
    })?;
    let dir = cache_dir(&args.out);
    write(&dir.join(format!("{}.f16", class.wnid)), &features)?;
    // Written last: its presence means the folder is cached.
    Ok(write(
        &dir.join(format!("{}.json", class.wnid)),
        (serde_json::to_string(&entry).expect("plain data") + "\n").as_bytes(),
    )?)
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
            let text = salient_engine::fsutil::read_text(&json)?;
            let entry: CacheEntry = serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("{}: corrupt cache ({e})", json.display())))?;
            let bin = json.with_extension("f16");
            let bytes = salient_engine::fsutil::read_file(&bin, salient_engine::fsutil::MAX_DATA_FILE_BYTES)?;
            if bytes.len() != entry.images.len() * entry.features * 2 {
                return Err(Error::Usage(format!(
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

#[derive(Serialize, Deserialize, Clone)]
struct TopImage {
    image: String,
    activation: f32,
}

#[derive(Serialize, Deserialize, Clone)]
struct Shown {
    image: String,
    view: String,
    heatmap: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    attack: Option<String>,
}

#[derive(Serialize, Deserialize, Clone)]
struct FeatureEntry {
    feature: usize,
    rank: usize,
    importance: f32,
    top_images: Vec<TopImage>,
    shown: Vec<Shown>,
}

#[derive(Serialize, Deserialize)]
struct ClassEntry {
    class: usize,
    wnid: String,
    name: String,
    /// Images in the class's group.
    images: usize,
    features: Vec<FeatureEntry>,
}

/// What `index.json` holds: how the ranking was done, and per class its top features.
#[derive(Serialize, Deserialize)]
struct DiscoverIndex {
    group: Group,
    top: usize,
    per_feature: usize,
    show: usize,
    attack_steps: usize,
    step_size: f32,
    classes: Vec<ClassEntry>,
}

fn rank_and_render(engine: &Engine, folder: &ImageFolder, args: &DiscoverArgs) -> Result<()> {
    let cache = cached_classes(&args.out)?;
    let f = engine.config.feature_dim();
    let group_of = |img: &CachedImage| match args.group {
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
        let features = top_k(&fi, args.top)
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
    for entry in &cache {
        for (img, row) in entry.images.iter().zip(entry.data.chunks_exact(f)) {
            let Some(&ci) = position.get(&group_of(img)) else { continue };
            for fe in &mut classes[ci].features {
                let activation = row[fe.feature];
                let list = &mut fe.top_images;
                let better =
                    |t: &TopImage| activation > t.activation || (activation == t.activation && img.image < t.image);
                if list.len() < args.per_feature || list.last().is_some_and(better) {
                    let at = list.iter().position(&better).unwrap_or(list.len());
                    list.insert(at, TopImage { image: img.image.clone(), activation });
                    list.truncate(args.per_feature);
                }
            }
        }
    }
    // Render what annotators see.
    let pairs: usize = classes.iter().map(|c| c.features.len()).sum();
    let bar = progress::bar(pairs as u64, "pairs", false);
    for class in &mut classes {
        for fe in &mut class.features {
            fe.shown = render_pair(engine, folder, class.class, fe, args)?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let skipped: Vec<Skipped> = cache.iter().flat_map(|e| e.skipped.clone()).collect();
    write(&args.out.join("skipped.jsonl"), jsonl(&skipped).as_bytes())?;
    let index = DiscoverIndex {
        group: args.group,
        top: args.top,
        per_feature: args.per_feature,
        show: args.show,
        attack_steps: args.attack_steps,
        step_size: args.step_size,
        classes,
    };
    write(&args.out.join("index.json"), (serde_json::to_string_pretty(&index).expect("plain data") + "\n").as_bytes())?;
    let seen: usize = cache.iter().map(|e| e.images.len()).sum();
    println!(
        "{} classes, {pairs} (class, feature) pairs ranked over {seen} images ({} skipped); index in {}",
        index.classes.len(),
        skipped.len(),
        args.out.join("index.json").display()
    );
    Ok(())
}

/// Renders a pair's first `--show` images (view, heatmap, attack) unless an identical render
/// is already there.
fn render_pair(
    engine: &Engine,
    folder: &ImageFolder,
    class: usize,
    fe: &FeatureEntry,
    args: &DiscoverArgs,
) -> Result<Vec<Shown>> {
    let dir = format!("pairs/{class}_{}", fe.feature);
    let images: Vec<&TopImage> = fe.top_images.iter().take(args.show).collect();
    let key = json!({
        "images": images.iter().map(|t| &t.image).collect::<Vec<_>>(),
        "attack_steps": args.attack_steps,
        "step_size": args.step_size,
    })
    .to_string();
    let marker = args.out.join(&dir).join("render.json");
    let shown: Vec<Shown> = images
        .iter()
        .enumerate()
        .map(|(k, t)| Shown {
            image: t.image.clone(),
            view: format!("{dir}/{k}_view.jpg"),
            heatmap: format!("{dir}/{k}_heatmap.png"),
            attack: (args.attack_steps > 0).then(|| format!("{dir}/{k}_attack.png")),
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
        write(&args.out.join(&s.view), &encode(&DynamicImage::ImageRgb8(view.clone()), ImageFormat::Jpeg)?)?;
        write(
            &args.out.join(&s.heatmap),
            &encode(&DynamicImage::ImageRgb8(colormap::overlay(view, &mask)), ImageFormat::Png)?,
        )?;
    }
    if args.attack_steps > 0 {
        let options = AttackOptions { steps: args.attack_steps, step_size: args.step_size };
        let attacked = feature_attack(&engine.model, engine.batch(&views), fe.feature, options, |_| {});
        for (s, img) in shown.iter().zip(block_on(to_images(attacked.images))?) {
            let path = args.out.join(s.attack.as_ref().expect("attack on"));
            write(&path, &encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png)?)?;
        }
    }
    write(&marker, key.as_bytes())?;
    Ok(shown)
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .map_err(|e| Error::Usage(format!("cannot encode an image: {e}")))?;
    Ok(bytes)
}

/// After `merge` of discover shards: the caches are joined; ranking is the next step.
pub fn finalize_merged(out: &Path) -> Result<String> {
    Ok(format!(
        "feature caches joined; rank them with `salient discover --resume -o {} --images ROOT --weights W` (same --images, --classes and weights)",
        out.display()
    ))
}
