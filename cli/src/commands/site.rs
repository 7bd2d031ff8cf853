//! `salient site`: a self-contained static site of a Salient dataset for the web explorer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat};
use rayon::prelude::*;
use salient_engine::annotations::Label;
use salient_engine::attack::{AttackOptions, feature_attack};
use salient_engine::dataset::{self, MaskRecord};
use salient_engine::engine::{block_on, describe, to_images};
use salient_engine::site::{
    ANNOTATE, AnnotateImage, AnnotateIndex, AnnotatePair, ClassPage, FeaturePage, INDEX, SiteClass, SiteImage, SiteIndex, SiteModel,
    SiteNotes,
};
use salient_engine::preprocess::View;
use salient_engine::{Engine, ResNetConfig, StateDict, checkpoint, decode, fsutil, imagenet};

use crate::error::{Error, Result};
use crate::model::ModelArgs;
use crate::pipeline::manifest::bytes_sha256;
use crate::pipeline::write;
use crate::progress;

/// Write a static site for the web explorer: browse a dataset's masks, run the model in the browser.
///
/// The site is self-contained and uses relative links only, so any static host serves it, under
/// any sub-path (GitHub Pages project sites included): the app (wasm bundle, from --app), the
/// class list and one JSON file per class, the images the model saw as JPEG thumbnails, the
/// soft masks as PNG, feature-attack images, the annotation pairs, and — with --weights — the
/// model as f16 safetensors in chunks for in-browser inference.
#[derive(clap::Args, Debug)]
pub struct SiteArgs {
    /// A `salient build` output.
    #[arg(long, value_name = "DATASET")]
    dataset: PathBuf,

    /// The images the dataset was built from (ImageNet layout).
    #[arg(long, value_name = "ROOT")]
    images: PathBuf,

    /// Weights for the upload page and for feature-attack images (otherwise neither).
    #[arg(long, short = 'w', value_name = "FILE")]
    weights: Option<PathBuf>,

    /// A `salient discover` output whose rendered pairs (and attack images) the site reuses.
    #[arg(long, value_name = "RUN")]
    run: Option<PathBuf>,

    /// The built web app (trunk's dist/).
    #[arg(long, value_name = "DIR", env = "SALIENT_APP_DIR", default_value = "dist")]
    app: PathBuf,

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

pub fn run(args: SiteArgs) -> Result<()> {
    if !args.app.join("index.html").exists() {
        return Err(Error::Usage(format!(
            "{}: no web app there (index.html missing): build it with `make site` or `trunk build --release`, or pass --app",
            args.app.display()
        )));
    }
    prepare_out(&args.out)?;
    let index_path = args.dataset.join(dataset::INDEX_FILE);
    let index_name = fsutil::shown(&index_path);
    let records = dataset::parse_index(&index_name, &fsutil::read_text(&index_path)?)?;
    if records.is_empty() {
        return Err(Error::Usage(format!("{}: the dataset holds no masks", args.dataset.display())));
    }
    let engine = match &args.weights {
        Some(w) => Some(ModelArgs { weights: Some(w.clone()), backend: salient_engine::Backend::Flex }.engine()?),
        None => None,
    };
    // The view the masks were made on: the dataset's (ImageNet's for the paper's release).
    let view = match crate::pipeline::manifest::Manifest::read(&args.dataset) {
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
    let notes: SiteNotes = match &args.notes {
        Some(p) => {
            let text = fsutil::read_text(p)?;
            serde_json::from_str(&text).map_err(|e| Error::Usage(format!("{}: not a notes file ({e})", fsutil::shown(p))))?
        }
        None => SiteNotes::default(),
    };
    let notes_root = match args.notes.as_deref().and_then(Path::parent) {
        Some(dir) => Some(fsutil::Root::new(dir)?),
        None => None,
    };
    let (images_root, dataset_root) = (fsutil::Root::new(&args.images)?, fsutil::Root::new(&args.dataset)?);
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

    // Thumbnails: the 224×224 view of every image, once.
    let mut sources: BTreeMap<&str, &MaskRecord> = BTreeMap::new();
    for r in &records {
        sources.entry(&r.source).or_insert(r);
    }
    // One thumbnail name per image: two sources may not share a class and image name.
    let mut names: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (source, r) in &sources {
        if let Some(other) = names.insert((&r.wnid, &r.image), source) {
            return Err(Error::Usage(format!(
                "{index_name}: the images {} and {} share the name `{}/{}`: each image of a class needs its own name",
                fsutil::escape(other),
                fsutil::escape(source),
                fsutil::escape(&r.wnid),
                fsutil::escape(&r.image)
            )));
        }
    }
    let bar = progress::bar(sources.len() as u64, "thumbnails", false);
    let thumbs: BTreeMap<String, Result<String>> = sources
        .par_iter()
        .map(|(source, r)| {
            let rel = format!("data/thumbs/{}/{}.jpg", r.wnid, r.image);
            let done = images_root
                .join(source, &index_name)
                .and_then(|path| decode::load_image(&path))
                .map_err(Error::from)
                .and_then(|img| encode(&DynamicImage::ImageRgb8(view.apply(&img)), ImageFormat::Jpeg))
                .and_then(|bytes| write(&args.out.join(&rel), &bytes))
                .map(|()| rel);
            bar.inc(1);
            (source.to_string(), done)
        })
        .collect();
    bar.finish_and_clear();
    let thumb = |source: &str| -> Result<String> {
        match &thumbs[source] {
            Ok(rel) => Ok(rel.clone()),
            Err(e) => Err(Error::Usage(format!("{source}: {e}"))),
        }
    };

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
    let mut classes = Vec::new();
    let mut annotate = Vec::new();
    let bar = progress::bar(by_class.values().map(|(_, f)| f.len()).sum::<usize>() as u64, "features", false);
    for (&class, (wnid, feats)) in &by_class {
        let name = class_name(class, wnid);
        let mut page = ClassPage { class, wnid: wnid.clone(), name: name.clone(), features: Vec::new(), note: notes.classes.get(&class).cloned() };
        // Discover's rank when the annotations carried it, else the order of the index.
        let mut feats: Vec<_> = feats.iter().enumerate().map(|(i, f)| (f.2[0].rank.unwrap_or(i + 1), f)).collect();
        feats.sort_by_key(|(rank, _)| *rank);
        for (rank, (feature, label, imgs)) in feats {
            let mut images = Vec::new();
            for r in imgs {
                let mask = format!("data/masks/{}", r.mask);
                write(&args.out.join(&mask), &dataset_root.read(&r.mask, &index_name, decode::MAX_FILE_BYTES)?)?;
                images.push(SiteImage { image: r.image.clone(), activation: r.activation, thumb: thumb(&r.source)?, mask, truth: truth(r)? });
            }
            let attack = attack_image(&args, &images_root, engine.as_ref(), class, *feature, imgs[0])?;
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
                        view: i.thumb.clone(),
                        mask: Some(i.mask.clone()),
                        heatmap: None,
                        attack: if k == 0 { attack.clone() } else { None },
                    })
                    .collect(),
            });
            let note = notes.features.get(&format!("{class}/{feature}")).cloned();
            page.features.push(FeaturePage { feature: *feature, label: *label, rank, attack, images, note });
            bar.inc(1);
        }
        let of = |l: Label| page.features.iter().filter(|f| f.label == l).map(|f| f.feature).collect();
        classes.push(SiteClass {
            class,
            wnid: wnid.clone(),
            name,
            core: of(Label::Core),
            spurious: of(Label::Spurious),
            thumb: page.features.first().and_then(|f| f.images.first()).map(|i| i.thumb.clone()),
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
        (Some(w), Some(e)) => Some(write_model(w, e, &args)?),
        _ => None,
    };
    let class_names = match &engine {
        Some(e) => e.class_names.clone(),
        None => (0..=by_class.keys().max().copied().unwrap_or(0))
            .map(|c| by_class.get(&c).map_or_else(|| format!("class {c}"), |(w, _)| class_name(c, w)))
            .collect(),
    };
    let index = SiteIndex {
        title: args.title.clone(),
        class_names,
        classes,
        model,
        images: sources.len(),
        annotate: true,
        generator: format!("salient {}", env!("CARGO_PKG_VERSION")),
    };
    write(&args.out.join(INDEX), json(&index).as_bytes())?;
    copy_app(&args.app, &args.out)?;

    let images_bytes = dir_bytes(&args.out.join("data/thumbs")) + dir_bytes(&args.out.join("data/masks"));
    let total = dir_bytes(&args.out);
    println!(
        "site written to {}: {:.1} MB in all; {} images with {} masks take {:.1} MB, {:.1} MB per 1000 images",
        args.out.display(),
        total as f64 / 1e6,
        sources.len(),
        records.len(),
        images_bytes as f64 / 1e6,
        images_bytes as f64 / 1e6 / sources.len() as f64 * 1000.0
    );
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data") + "\n"
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
        .map_err(|e| Error::Usage(format!("cannot encode an image: {e}")))?;
    Ok(bytes)
}

/// An empty or new folder, or one holding an earlier site (which is replaced).
fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out).map_err(|e| salient_engine::Error::read(out, e))?;
        if entries.next().is_some() {
            if !out.join(INDEX).exists() {
                return Err(Error::Usage(format!("{} is not empty and is not a Salient site: choose another folder", out.display())));
            }
            std::fs::remove_dir_all(out).map_err(|e| salient_engine::Error::write(out, e))?;
        }
    }
    std::fs::create_dir_all(out).map_err(|e| salient_engine::Error::write(out, e))?;
    Ok(())
}

/// The feature-attack image of a pair: from the discover run if it has one, else computed on
/// the pair's top image when weights are given.
fn attack_image(
    args: &SiteArgs,
    images: &fsutil::Root,
    engine: Option<&Engine>,
    class: usize,
    feature: usize,
    top: &MaskRecord,
) -> Result<Option<String>> {
    let rel = format!("data/attacks/{class}_{feature}.png");
    if let Some(run) = &args.run {
        let from = fsutil::Root::new(run)?.join(&format!("pairs/{class}_{feature}/0_attack.png"), "the discover run")?;
        if from.exists() {
            let bytes = fsutil::read_file(&from, decode::MAX_FILE_BYTES)?;
            write(&args.out.join(&rel), &bytes)?;
            return Ok(Some(rel));
        }
    }
    let Some(engine) = engine.filter(|_| args.attack_steps > 0) else { return Ok(None) };
    let source = images.join(&top.source, dataset::INDEX_FILE)?;
    let view = engine.view.apply(&decode::load_image(&source)?);
    let options = AttackOptions { steps: args.attack_steps, step_size: 10.0 };
    let attacked = feature_attack(&engine.model, engine.batch(&[view]), feature, options, |_| {});
    let img = block_on(to_images(attacked.images))?.remove(0);
    write(&args.out.join(&rel), &encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png)?)?;
    Ok(Some(rel))
}

/// The pairs of a discover run, with its rendered views, heatmaps and attacks.
fn run_pairs(run: &Path, out: &Path) -> Result<Vec<AnnotatePair>> {
    let path = run.join("index.json");
    let name = fsutil::shown(&path);
    let index: serde_json::Value =
        serde_json::from_str(&fsutil::read_text(&path)?).map_err(|e| Error::Usage(format!("{name}: not a discover index ({e})")))?;
    let mut pairs = Vec::new();
    // Paths in the index stay inside the run, and their copies inside the site.
    let run_root = fsutil::Root::new(run)?;
    let copy = |rel: &str| -> Result<String> {
        let to = format!("data/{rel}");
        write(&out.join(&to), &run_root.read(rel, &name, decode::MAX_FILE_BYTES)?)?;
        Ok(to)
    };
    for c in index["classes"].as_array().into_iter().flatten() {
        for f in c["features"].as_array().into_iter().flatten() {
            let images = f["shown"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    Ok(AnnotateImage {
                        view: copy(s["view"].as_str().unwrap_or_default())?,
                        mask: None,
                        heatmap: Some(copy(s["heatmap"].as_str().unwrap_or_default())?),
                        attack: s["attack"].as_str().map(copy).transpose()?,
                    })
                })
                .collect::<Result<_>>()?;
            pairs.push(AnnotatePair {
                class: c["class"].as_u64().unwrap_or(0) as usize,
                wnid: c["wnid"].as_str().unwrap_or_default().to_owned(),
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                feature: f["feature"].as_u64().unwrap_or(0) as usize,
                rank: f["rank"].as_u64().unwrap_or(0) as usize,
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
        let rel = format!("data/model/model.safetensors.{i:03}");
        write(&args.out.join(&rel), part)?;
        chunks.push(rel);
    }
    Ok(SiteModel { description: describe(&config), chunks, bytes: bytes.len() as u64, sha256: bytes_sha256(&bytes) })
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
