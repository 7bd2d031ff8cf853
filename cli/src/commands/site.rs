//! `salient site`: a self-contained static site of a Salient dataset for the web explorer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use rayon::prelude::*;
use salient_engine::annotations::{Annotations, Bounds, ClassLabels, Label};
use salient_engine::attack::AttackOptions;
use salient_engine::dataset::{self, MaskRecord};
use salient_engine::engine::{block_on, describe, to_images};
use salient_engine::preprocess::View;
use salient_engine::site::{
    ANNOTATE, AnnotateImage, AnnotateIndex, AnnotatePair, ClassPage, FeaturePage, INDEX, LabelSource, MaskMap, SCHEMA,
    SiteChunk, SiteClass, SiteImage, SiteIndex, SiteModel, SiteNotes, thumb_path,
};
use salient_engine::{Engine, ResNetConfig, StateDict, checkpoint, decode, fsutil, imagenet};

use crate::error::{Error, Result};
use crate::model::ModelArgs;
use crate::progress;
use salient_pipeline::discover::DiscoverIndex;
use salient_pipeline::files::write;
use salient_pipeline::manifest::bytes_sha256;

/// Write a static site for the web explorer: browse a dataset's masks, run the model in the browser.
///
/// DATASET is a `salient build` output or the paper's released Salient ImageNet
/// (`wordnet_dict.py`, `<wnid>/image_names_map.csv`, JPEG masks; its labels from --annotations).
/// The site is self-contained and uses relative links only, so any static host serves it, under
/// any sub-path (GitHub Pages project sites included): the app, the class list and one JSON
/// file per class holding every mask as its 7×7 map (the browser draws it), the images as small
/// JPEG thumbnails — or none, with --images left out: a masks-only site, whose visitors point
/// the page at their own copy of the images — feature-attack images, the annotation pairs, and
/// with --weights the model as f16 safetensors in chunks for in-browser inference.
#[derive(clap::Args, Debug)]
pub struct SiteArgs {
    /// A `salient build` output, or the paper's released dataset.
    #[arg(long, value_name = "DATASET")]
    dataset: PathBuf,

    /// The labels: the paper's MTurk CSV (votes, confidence and reasons are shown on feature
    /// pages) or Salient's CSV. Required for the paper's release; for a build, replaces the
    /// labels of its index.
    #[arg(long, value_name = "CSV")]
    annotations: Option<PathBuf>,

    /// The images the dataset was built from (ImageNet layout): shipped as thumbnails. Without
    /// it the site is masks-only (for images that may not be redistributed, such as ImageNet's).
    #[arg(long, value_name = "ROOT")]
    images: Option<PathBuf>,

    /// Side of the thumbnails, in pixels (the model's view is scaled down to it). The defaults
    /// keep the full dataset, every mask with its own image, under 1 GB.
    #[arg(long, default_value_t = 128, value_name = "PX", value_parser = clap::value_parser!(u32).range(32..=512))]
    thumb_size: u32,

    /// WebP quality of the thumbnails (1–100).
    #[arg(long, default_value_t = 70, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=100))]
    thumb_quality: u8,

    /// Weights for the upload page and for feature-attack images (otherwise neither).
    #[arg(long, short = 'w', value_name = "FILE")]
    weights: Option<PathBuf>,

    /// A `salient discover` output whose rendered pairs (and attack images) the site reuses.
    #[arg(long, value_name = "RUN")]
    run: Option<PathBuf>,

    /// The built web app (trunk's dist/); found beside an installed binary when not given.
    #[arg(long, value_name = "DIR", env = "SALIENT_APP_DIR")]
    app: Option<PathBuf>,

    /// Feature-attack steps for each feature's top image, when --weights is given and --run has none.
    #[arg(long, default_value_t = 100, value_name = "N")]
    attack_steps: usize,

    /// Notes to show: JSON with class and feature notes and ground-truth image overlays (see
    /// `salient synth score`, which writes one).
    #[arg(long, value_name = "FILE")]
    notes: Option<PathBuf>,

    /// Title shown on the site.
    #[arg(long, default_value = "Salient", value_name = "TEXT")]
    title: String,

    /// Size of the weight chunks, in MiB.
    #[arg(long, default_value_t = 4, value_name = "MIB")]
    chunk_mib: usize,

    /// Output folder (replaced if it holds an earlier site).
    #[arg(long, short = 'o', value_name = "SITE")]
    out: PathBuf,
}

/// The full Salient ImageNet: 1000 classes × 5 features × 65 images.
const FULL_DATASET_MASKS: u64 = 1000 * 5 * 65;
const FULL_DATASET_PAIRS: u64 = 1000 * 5;

/// The side of the maps masks are stored as (the method's `layer4` maps are 7×7), and the finer
/// one used for a mask that is not the upsampling of a 7×7 map.
const MAP_SIDE: usize = 7;
const FINE_MAP_SIDE: usize = 28;

/// The root-mean-square difference, in gray levels, above which a mask is not taken for an
/// upsampled 7×7 map (JPEG masks of such maps stay within about 1.5).
const MAP_TOLERANCE: f32 = 4.0;

pub fn run(mut args: SiteArgs) -> Result<()> {
    let app = crate::app_dir::locate(args.app.as_deref())?;
    check_out(&args.out)?;
    // The site is written beside its place and moved there whole: a failure leaves no half site
    // (and an earlier site stays as it was).
    let out = args.out.clone();
    let staging = Staging::new(&out)?;
    args.out = staging.path.clone();
    let (index, fit) = write_site(&args, &app)?;
    staging.finish(&out)?;
    report(&out, &index, &fit);
    Ok(())
}

/// A sibling folder the site is written into, removed unless [`Staging::finish`] moves it into place.
struct Staging {
    path: PathBuf,
    done: bool,
}

impl Staging {
    fn new(out: &Path) -> Result<Staging> {
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "site".into());
        let path = out.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| salient_engine::Error::write(&path, e))?;
        }
        std::fs::create_dir_all(&path).map_err(|e| salient_engine::Error::write(&path, e))?;
        Ok(Staging { path, done: false })
    }

    /// Replaces `out` (empty, or an earlier site) with the finished site.
    fn finish(mut self, out: &Path) -> Result<()> {
        check_out(out)?;
        if out.exists() {
            std::fs::remove_dir_all(out).map_err(|e| salient_engine::Error::write(out, e))?;
        }
        std::fs::rename(&self.path, out).map_err(|e| salient_engine::Error::write(out, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes the site into `args.out`; what it holds and how well its masks fit their maps.
fn write_site(args: &SiteArgs, app: &Path) -> Result<(SiteIndex, FitStats)> {
    let index_path = args.dataset.join(dataset::INDEX_FILE);
    let index_name = fsutil::shown(&index_path);
    let engine = match &args.weights {
        Some(w) => Some(ModelArgs { weights: Some(w.clone()), backend: salient_engine::Backend::Flex }.engine()?),
        None => None,
    };
    let bounds = Bounds { classes: engine.as_ref().map_or(1000, |e| e.config.num_classes), features: usize::MAX };
    let annotations = match &args.annotations {
        Some(p) => Some(salient_pipeline::files::load_annotations(p, bounds)?),
        None => None,
    };
    let mut records = if index_path.exists() {
        dataset::parse_index(&index_name, &fsutil::read_text(&index_path)?)?
    } else {
        let Some(labels) = &annotations else {
            return Err(Error::Usage(format!(
                "{} has no {}: for the paper's release, give its labels with --annotations (discover_spurious_features.csv)",
                args.dataset.display(),
                dataset::INDEX_FILE
            )));
        };
        dataset::release_records(&args.dataset, labels)?
    };
    if let Some(labels) = &annotations {
        // The given labels replace the index's; pairs they do not label are left out.
        records.retain_mut(|r| match labels.pair(r.class, r.feature) {
            Some(p) => {
                r.label = p.label;
                r.rank = p.rank.or(r.rank);
                true
            }
            None => false,
        });
    }
    if records.is_empty() {
        return Err(Error::Data(format!("{}: the dataset holds no labelled masks", args.dataset.display())));
    }
    // The view the masks were made on: the dataset's (ImageNet's for the paper's release).
    let view = match salient_pipeline::manifest::Manifest::read(&args.dataset) {
        Ok(m) => m.params.get("view").and_then(|v| v.as_str()).and_then(View::from_text).unwrap_or(View::IMAGENET),
        Err(_) => View::IMAGENET,
    };
    if let Some(e) = &engine
        && e.view != view
    {
        return Err(Error::Usage(format!(
            "the dataset was built for {}×{} views but these weights see {}×{}: give the weights it was built with",
            view.crop, view.crop, e.view.crop, e.view.crop
        )));
    }
    let labels = label_source(args.annotations.as_deref(), annotations.as_ref());
    let notes: SiteNotes = match &args.notes {
        Some(p) => {
            let text = fsutil::read_text(p)?;
            serde_json::from_str(&text)
                .map_err(|e| Error::Data(format!("{}: not a notes file ({e})", fsutil::shown(p))))?
        }
        None => SiteNotes::default(),
    };
    let notes_root = match args.notes.as_deref().and_then(Path::parent) {
        Some(dir) => Some(fsutil::Root::new(dir)?),
        None => None,
    };
    let images_root = args.images.as_deref().map(fsutil::Root::new).transpose()?;
    let dataset_root = fsutil::Root::new(&args.dataset)?;
    let truth = |r: &MaskRecord| -> Result<Option<String>> {
        let Some(overlay) = notes.images.get(&r.source) else { return Ok(None) };
        let rel = format!("data/truth/{}/{}.png", r.wnid, r.image);
        if !args.out.join(&rel).exists() {
            let what = format!("{} (notes)", args.notes.as_deref().map(fsutil::shown).unwrap_or_default());
            let notes_root = notes_root.as_ref().expect("notes come from a file");
            write(&args.out.join(&rel), &notes_root.read(overlay, &what, decode::MAX_FILE_BYTES)?)?;
        }
        Ok(Some(rel))
    };
    let class_name = |class: usize, wnid: &str| match &engine {
        Some(e) => e.class_name(class),
        None => imagenet::index_of(wnid).map_or_else(|| wnid.to_owned(), |i| imagenet::class_name(1000, i)),
    };

    // Thumbnails: the view of every image, once, scaled to the thumbnail size.
    let mut sources: BTreeMap<&str, &MaskRecord> = BTreeMap::new();
    for r in &records {
        sources.entry(&r.source).or_insert(r);
    }
    // One thumbnail name per image: two sources may not share a class and image name.
    let mut names: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (source, r) in &sources {
        if let Some(other) = names.insert((&r.wnid, &r.image), source) {
            return Err(Error::Data(format!(
                "{index_name}: the images {} and {} share the name `{}/{}`: each image of a class needs its own name",
                fsutil::escape(other),
                fsutil::escape(source),
                fsutil::escape(&r.wnid),
                fsutil::escape(&r.image)
            )));
        }
    }
    // The thumbnails, each written once; their paths derive from the names (`thumb_path`).
    let thumbs: Vec<(&str, Result<()>)> = match &images_root {
        Some(images_root) => {
            let bar = progress::bar(sources.len() as u64, "thumbnails", false);
            let done = sources
                .par_iter()
                .map(|(source, r)| {
                    let rel = thumb_path(&r.wnid, &r.image);
                    let done = images_root
                        .join(source, &index_name)
                        .and_then(|path| decode::load_image(&path))
                        .map_err(Error::from)
                        .and_then(|img| thumbnail(&view.apply(&img), args.thumb_size, args.thumb_quality))
                        .and_then(|bytes| Ok(write(&args.out.join(&rel), &bytes)?));
                    bar.inc(1);
                    (*source, done)
                })
                .collect();
            bar.finish_and_clear();
            done
        }
        None => Vec::new(),
    };
    // An image that fails is an error, before any page names its thumbnail.
    if let Some((source, Err(e))) = thumbs.iter().find(|(_, done)| done.is_err()) {
        return Err(Error::Data(format!("{source}: {e}")));
    }

    // Every mask as its map, read and fitted in parallel.
    let bar = progress::bar(records.len() as u64, "masks", false);
    let maps: Vec<Result<(MaskMap, f32)>> = records
        .par_iter()
        .map(|r| {
            let fitted = mask_map(&dataset_root, &r.mask, &index_name);
            bar.inc(1);
            fitted
        })
        .collect();
    bar.finish_and_clear();
    let mut fit = FitStats::default();
    let mut map_of: BTreeMap<(usize, usize, &str), String> = BTreeMap::new();
    for (r, m) in records.iter().zip(maps) {
        let (map, rms) = m?;
        fit.add(map.side, rms);
        map_of.insert((r.class, r.feature, &r.image), map.encode());
    }

    // Class pages: features, their images and masks, attack images.
    // class → (WordNet id, its features: (feature, label, records)).
    type Features<'a> = Vec<(usize, Label, Vec<&'a MaskRecord>)>;
    let mut by_class: BTreeMap<usize, (String, Features)> = BTreeMap::new();
    for r in &records {
        let (_, feats) = by_class.entry(r.class).or_insert_with(|| (r.wnid.clone(), Vec::new()));
        match feats.iter_mut().find(|(f, _, _)| *f == r.feature) {
            Some((_, _, imgs)) => imgs.push(r),
            None => feats.push((r.feature, r.label, vec![r])),
        }
    }
    let provenance = |class: usize, feature: usize| {
        annotations.as_ref().and_then(|a| a.pair(class, feature)).map(|p| (p.votes, p.answers.clone()))
    };
    let mut classes = Vec::new();
    let mut annotate = Vec::new();
    let bar = progress::bar(by_class.values().map(|(_, f)| f.len()).sum::<usize>() as u64, "features", false);
    for (&class, (wnid, feats)) in &by_class {
        let name = class_name(class, wnid);
        let mut page = ClassPage {
            class,
            wnid: wnid.clone(),
            name: name.clone(),
            features: Vec::new(),
            note: notes.classes.get(&class).cloned(),
        };
        // The labels' rank when they carry it, else the order of the index.
        let mut feats: Vec<_> = feats.iter().enumerate().map(|(i, f)| (f.2[0].rank.unwrap_or(i + 1), f)).collect();
        feats.sort_by_key(|(rank, _)| *rank);
        for (rank, (feature, label, imgs)) in feats {
            let mut images = Vec::new();
            for r in imgs {
                images.push(SiteImage {
                    image: r.image.clone(),
                    // Four decimals: the page shows three.
                    activation: r.activation.is_finite().then(|| (r.activation * 1e4).round() / 1e4),
                    source: (r.source != format!("{}/{}.JPEG", r.wnid, r.image)).then(|| r.source.clone()),
                    map: map_of[&(r.class, r.feature, r.image.as_str())].clone(),
                    truth: truth(r)?,
                });
            }
            let attack = attack_image(args, images_root.as_ref(), engine.as_ref(), class, *feature, imgs[0])?;
            annotate.push(AnnotatePair {
                class,
                wnid: wnid.clone(),
                name: name.clone(),
                feature: *feature,
                rank,
                label: Some(*label),
                images: images
                    .iter()
                    .take(5)
                    .enumerate()
                    .map(|(k, i)| AnnotateImage {
                        view: images_root.is_some().then(|| thumb_path(wnid, &i.image)),
                        map: Some(i.map.clone()),
                        heatmap: None,
                        attack: if k == 0 { attack.clone() } else { None },
                    })
                    .collect(),
            });
            let note = notes.features.get(&format!("{class}/{feature}")).cloned();
            let (votes, answers) = provenance(class, *feature).unwrap_or_default();
            page.features.push(FeaturePage {
                feature: *feature,
                label: *label,
                rank,
                votes,
                answers,
                attack,
                images,
                note,
            });
            bar.inc(1);
        }
        let labels = ClassLabels::new(class, page.features.iter().map(|f| (f.feature, f.label)));
        classes.push(SiteClass {
            class,
            wnid: wnid.clone(),
            name,
            core: labels.core,
            spurious: labels.spurious,
            thumb: page
                .features
                .first()
                .and_then(|f| f.images.first())
                .filter(|_| images_root.is_some())
                .map(|i| thumb_path(wnid, &i.image)),
            note: page.note.clone(),
        });
        write(&args.out.join(salient_engine::site::class_page(class)), json(&page).as_bytes())?;
    }
    bar.finish_and_clear();
    if let Some(run) = &args.run {
        annotate = run_pairs(run, &args.out)?;
    }
    write(&args.out.join(ANNOTATE), json(&AnnotateIndex { pairs: annotate }).as_bytes())?;

    let model = match (&args.weights, &engine) {
        (Some(w), Some(e)) => Some(write_model(w, e, args)?),
        _ => None,
    };
    let index = SiteIndex {
        schema: SCHEMA,
        title: args.title.clone(),
        classes,
        model,
        images: sources.len(),
        masks: records.len(),
        labels,
        thumbs: images_root.is_some(),
        view: view.to_text(),
        annotate: true,
        generator: format!("salient {}", env!("CARGO_PKG_VERSION")),
    };
    write(&args.out.join(INDEX), json(&index).as_bytes())?;
    copy_app(app, &args.out)?;
    Ok((index, fit))
}

/// Where the labels come from, for the page.
fn label_source(path: Option<&Path>, annotations: Option<&Annotations>) -> LabelSource {
    let file = path
        .and_then(Path::file_name)
        .map(|n| fsutil::escape(&n.to_string_lossy()))
        .unwrap_or_else(|| dataset::INDEX_FILE.to_owned());
    match annotations {
        Some(a) if a.pairs.iter().any(|p| !p.answers.is_empty()) => LabelSource {
            kind: "mturk".into(),
            file,
            description: "The paper's Mechanical Turk study: five workers judged each feature from its top images, heatmaps and \
                          feature attack; spurious when at least three said the focus is a separate object or the background."
                .into(),
        },
        Some(_) => LabelSource {
            kind: "csv".into(),
            file,
            description: "Labels from a Salient CSV (written by the explorer's annotation page or by `salient labels`).".into(),
        },
        None => LabelSource {
            kind: "index".into(),
            file,
            description: "The labels `salient build` recorded in the dataset's index, from the annotations it was given.".into(),
        },
    }
}

/// A mask file as its map, and how far (RMS, gray levels) the map's upsampling is from it: a
/// 7×7 map when the mask is one upsampled, else a finer one.
fn mask_map(root: &fsutil::Root, rel: &str, index_name: &str) -> Result<(MaskMap, f32)> {
    let path = root.join(rel, index_name)?;
    let img = decode::load_image(&path)?;
    let (w, h) = img.dimensions();
    if w != h || w < FINE_MAP_SIDE as u32 {
        return Err(Error::Data(format!(
            "{}: a mask must be square and at least {FINE_MAP_SIDE} pixels wide (it is {w}×{h})",
            fsutil::shown(&path)
        )));
    }
    let size = w as usize;
    let mask: Vec<f32> = img.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect();
    let rms = |m: &MaskMap| {
        let drawn = m.mask(size);
        (drawn.iter().zip(&mask).map(|(a, b)| ((a - b) * 255.0).powi(2)).sum::<f32>() / mask.len() as f32).sqrt()
    };
    let coarse = MaskMap::fit(&mask, size, MAP_SIDE);
    let e = rms(&coarse);
    if e <= MAP_TOLERANCE {
        return Ok((coarse, e));
    }
    let fine = MaskMap::fit(&mask, size, FINE_MAP_SIDE);
    let e = rms(&fine);
    Ok((fine, e))
}

/// How well the masks are stored as maps.
#[derive(Default)]
struct FitStats {
    coarse: usize,
    fine: usize,
    sum_rms: f64,
    max_rms: f32,
}

impl FitStats {
    fn add(&mut self, side: usize, rms: f32) {
        if side == MAP_SIDE {
            self.coarse += 1
        } else {
            self.fine += 1
        }
        self.sum_rms += f64::from(rms);
        self.max_rms = self.max_rms.max(rms);
    }
}

/// Sizes: the site, per class and per mask, and what the full dataset would take.
fn report(out: &Path, index: &SiteIndex, fit: &FitStats) {
    let total = dir_bytes(out);
    let size = |rel: &str| dir_bytes(&out.join(rel));
    let (classes, thumbs, annotate) = (size("data/classes"), size("data/thumbs"), size(ANNOTATE));
    let per_pair_files = size("data/attacks") + size("data/pairs") + annotate;
    let fixed = total - classes - thumbs - per_pair_files - size("data/truth");
    let masks = index.masks.max(1) as f64;
    let pairs = index.classes.iter().map(|c| c.core.len() + c.spurious.len()).sum::<usize>().max(1) as f64;
    // Every mask of the full dataset with its share of a class page and, in a thumbnail site,
    // its own image; every pair with its share of the annotation files and attack images.
    let per_mask = classes as f64 / masks + thumbs as f64 / index.images.max(1) as f64;
    let full =
        fixed as f64 + per_mask * FULL_DATASET_MASKS as f64 + per_pair_files as f64 / pairs * FULL_DATASET_PAIRS as f64;
    println!(
        "site written to {}: {:.1} MB in all, {} classes, {} masks over {} images ({}); {:.1} kB per class",
        out.display(),
        total as f64 / 1e6,
        index.classes.len(),
        index.masks,
        index.images,
        if index.thumbs { format!("thumbnails {:.1} MB", thumbs as f64 / 1e6) } else { "masks only".into() },
        (classes + thumbs) as f64 / 1e3 / index.classes.len().max(1) as f64,
    );
    println!(
        "masks stored as maps: {} at 7×7, {} at {FINE_MAP_SIDE}×{FINE_MAP_SIDE}; drawn back they differ from the files by {:.2} gray levels RMS on average, {:.2} at most",
        fit.coarse,
        fit.fine,
        fit.sum_rms / masks,
        fit.max_rms
    );
    println!(
        "projected for the full Salient ImageNet (1000 classes × 5 features × 65 images, {}): {:.0} MB",
        if index.thumbs { "each with its own thumbnail" } else { "masks only" },
        full / 1e6
    );
}

/// The view scaled to `size` (Pillow-exact bilinear) as a lossy WebP of the given quality.
fn thumbnail(view: &image::RgbImage, size: u32, quality: u8) -> Result<Vec<u8>> {
    let (w, h) = (view.width() as usize, view.height() as usize);
    let small = if view.width() == size {
        view.as_raw().clone()
    } else {
        salient_engine::resample::resize_bilinear(view.as_raw(), w, h, 3, size as usize, size as usize)
    };
    Ok(webp::Encoder::from_rgb(&small, size, size).encode(f32::from(quality)).to_vec())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data") + "\n"
}

/// The output must be new, empty, or an earlier site (which is replaced).
fn check_out(out: &Path) -> Result<()> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|e| salient_engine::Error::read(out, e))?;
        if entries.next().is_some() && !out.join(INDEX).exists() {
            return Err(Error::Usage(format!(
                "{} is not empty and is not a Salient site: choose another folder",
                out.display()
            )));
        }
    }
    Ok(())
}

/// The feature-attack image of a pair: from the discover run if it has one, else computed on
/// the pair's top image when weights are given.
fn attack_image(
    args: &SiteArgs,
    images: Option<&fsutil::Root>,
    engine: Option<&Engine>,
    class: usize,
    feature: usize,
    top: &MaskRecord,
) -> Result<Option<String>> {
    let rel = format!("data/attacks/{class}_{feature}.png");
    if let Some(run) = &args.run {
        let from =
            fsutil::Root::new(run)?.join(&format!("pairs/{class}_{feature}/0_attack.png"), "the discover run")?;
        if from.exists() {
            let bytes = fsutil::read_file(&from, decode::MAX_FILE_BYTES)?;
            write(&args.out.join(&rel), &bytes)?;
            return Ok(Some(rel));
        }
    }
    let (Some(engine), Some(images)) = (engine.filter(|_| args.attack_steps > 0), images) else { return Ok(None) };
    let source = images.join(&top.source, dataset::INDEX_FILE)?;
    let view = engine.view.apply(&decode::load_image(&source)?);
    let options = AttackOptions { steps: args.attack_steps, step_size: 10.0 };
    let attacked = engine.attack(engine.batch(&[view]), feature, options, |_| {});
    let img = block_on(to_images(attacked.images))?.remove(0);
    write(&args.out.join(&rel), &salient_engine::encode::png(&DynamicImage::ImageRgb8(img))?)?;
    Ok(Some(rel))
}

/// The pairs of a discover run, with its rendered views, heatmaps and attacks.
fn run_pairs(run: &Path, out: &Path) -> Result<Vec<AnnotatePair>> {
    let index = DiscoverIndex::read(run)?;
    let name = fsutil::shown(&run.join(salient_pipeline::discover::INDEX_FILE));
    let mut pairs = Vec::new();
    // Paths in the index stay inside the run, and their copies inside the site.
    let run_root = fsutil::Root::new(run)?;
    let copy = |rel: &str| -> Result<String> {
        let to = format!("data/{rel}");
        write(&out.join(&to), &run_root.read(rel, &name, decode::MAX_FILE_BYTES)?)?;
        Ok(to)
    };
    for c in &index.classes {
        for f in &c.features {
            let images = f
                .shown
                .iter()
                .map(|s| {
                    Ok(AnnotateImage {
                        view: Some(copy(&s.view)?),
                        map: None,
                        heatmap: Some(copy(&s.heatmap)?),
                        attack: s.attack.as_deref().map(copy).transpose()?,
                    })
                })
                .collect::<Result<_>>()?;
            pairs.push(AnnotatePair {
                class: c.class,
                wnid: c.wnid.clone(),
                name: c.name.clone(),
                feature: f.feature,
                rank: f.rank,
                label: None,
                images,
            });
        }
    }
    Ok(pairs)
}

/// The model as f16 safetensors (only the tensors it uses, class names in the metadata), in chunks.
fn write_model(weights: &Path, engine: &Engine, args: &SiteArgs) -> Result<SiteModel> {
    let mut sd = StateDict::load(weights)?;
    let config = ResNetConfig::infer(&sd)?;
    let (_, used) = config.load_with_keys(&sd, &salient_engine::burn::tensor::Device::flex())?;
    sd.tensors.retain(|k, _| used.contains(k));
    sd.class_names = Some(engine.class_names.clone());
    sd.view = Some(engine.view);
    let bytes = checkpoint::safetensors_bytes(&sd, true)?;
    let chunk = args.chunk_mib.max(1) << 20;
    let mut chunks = Vec::new();
    for (i, part) in bytes.chunks(chunk).enumerate() {
        let path = format!("data/model/model.safetensors.{i:03}");
        write(&args.out.join(&path), part)?;
        chunks.push(SiteChunk { path, bytes: part.len() as u64, sha256: bytes_sha256(part) });
    }
    Ok(SiteModel {
        description: describe(&config),
        classes: config.num_classes,
        chunks,
        bytes: bytes.len() as u64,
        sha256: bytes_sha256(&bytes),
    })
}

/// The app bundle's files, at the site's root.
fn copy_app(app: &Path, out: &Path) -> Result<()> {
    let entries = std::fs::read_dir(app).map_err(|e| salient_engine::Error::read(app, e))?;
    for entry in entries {
        let path = entry.map_err(|e| salient_engine::Error::read(app, e))?.path();
        let name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
        if path.is_dir() {
            copy_app(&path, &out.join(&name))?;
        } else {
            write(&out.join(&name), &fsutil::read_file(&path, fsutil::MAX_DATA_FILE_BYTES)?)?;
        }
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { dir_bytes(&p) } else { e.metadata().map(|m| m.len()).unwrap_or(0) }
        })
        .sum()
}
