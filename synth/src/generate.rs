//! The synthetic benchmark on disk: ImageNet-layout `train/` and `test/` folders, a
//! ground-truth region PNG per image, and a manifest of what was planted.

use std::path::Path;

use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use salient_engine::encode;
use salient_pipeline::Progress;
use salient_pipeline::files::write;

use crate::scene::{self, Cue, SHAPES, SIZE};
use crate::{Error, Result};

/// How the cues are planted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub seed: u64,
    pub train_per_class: usize,
    pub test_per_class: usize,
    /// Training rate of cue `k` in class `k` (classes past the list have no planted cue).
    pub planted_rates: Vec<f64>,
    /// Training rate of every other (class, cue) pair: the cue's background level.
    pub base_rate: f64,
    /// Test rate of every cue in every class, independent of the class.
    pub test_rate: f64,
}

impl Plan {
    pub const DEFAULT_RATES: [f64; 5] = [0.9, 0.85, 0.8, 0.6, 0.4];

    pub fn new(seed: u64, train_per_class: usize, test_per_class: usize) -> Self {
        Plan {
            seed,
            train_per_class,
            test_per_class,
            planted_rates: Self::DEFAULT_RATES.to_vec(),
            base_rate: 0.05,
            test_rate: 0.3,
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    #[serde(default = "salient_pipeline::schema")]
    pub schema: u32,
    pub plan: Plan,
    pub size: usize,
    pub classes: Vec<ManifestClass>,
    pub cues: Vec<ManifestCue>,
    /// How to read the ground-truth PNGs.
    pub regions: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestClass {
    pub index: usize,
    /// The folder name.
    pub wnid: String,
    pub name: String,
    /// The cue planted in this class, if any, and its training rate.
    pub cue: Option<String>,
    pub train_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestCue {
    pub index: usize,
    pub name: String,
    pub kind: String,
    /// Its value in the region PNGs.
    pub code: u8,
}

/// One line of `ground_truth.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Truth {
    pub split: String,
    pub class: usize,
    /// The dataset's image name (file stem).
    pub image: String,
    /// The image, relative to the benchmark root.
    pub path: String,
    /// The region PNG, relative to the benchmark root.
    pub regions: String,
    /// Names of the cues drawn in.
    pub cues: Vec<String>,
}

pub const SPLITS: [&str; 2] = ["train", "test"];

pub fn wnid(class: usize) -> String {
    format!("c{class}_{}", SHAPES[class])
}

impl Manifest {
    pub fn new(plan: Plan) -> Self {
        let classes = (0..SHAPES.len())
            .map(|i| ManifestClass {
                index: i,
                wnid: wnid(i),
                name: SHAPES[i].to_owned(),
                cue: plan.planted_rates.get(i).map(|_| Cue::ALL[i].name().to_owned()),
                train_rate: plan.planted_rates.get(i).copied().unwrap_or(0.0),
            })
            .collect();
        let cues = Cue::ALL
            .iter()
            .map(|c| ManifestCue {
                index: c.index(),
                name: c.name().into(),
                kind: c.kind().into(),
                code: 1 << c.index(),
            })
            .collect();
        Manifest {
            schema: salient_pipeline::SCHEMA,
            plan,
            size: SIZE,
            classes,
            cues,
            regions: format!(
                "ground_truth/<split>/<wnid>/<image>.png, 8-bit gray, one code per pixel: {} = the core object, 2^k = cue k visible, 0 = plain background",
                scene::OBJECT
            ),
        }
    }

    pub fn read(root: &Path) -> Result<Self> {
        let path = root.join("manifest.json");
        let text = salient_engine::fsutil::read_text(&path)?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Data(format!(
                "{}: not a synthetic benchmark manifest ({e}); make one with `salient synth generate`",
                path.display()
            ))
        })
    }

    /// Class names in class order (what a model trained on the benchmark stores).
    pub fn class_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }
}

/// Which cues image `index` of `class` gets in `split`, drawn from `rng`.
fn draw_cues(plan: &Plan, split: usize, class: usize, rng: &mut impl RngExt) -> Vec<Cue> {
    let mut cues: Vec<Cue> = Cue::ALL
        .into_iter()
        .filter(|c| {
            let rate = match (split, plan.planted_rates.get(class)) {
                (1, _) => plan.test_rate,
                (_, Some(&r)) if c.index() == class => r,
                _ => plan.base_rate,
            };
            rng.random_bool(rate)
        })
        .collect();
    // The two background textures exclude each other: keep the class's own, else either.
    if cues.contains(&Cue::Stripes) && cues.contains(&Cue::Dots) {
        let drop = match class {
            0 => Cue::Dots,
            3 => Cue::Stripes,
            _ if rng.random_bool(0.5) => Cue::Dots,
            _ => Cue::Stripes,
        };
        cues.retain(|&c| c != drop);
    }
    cues
}

fn png_gray(data: &[u8]) -> Result<Vec<u8>> {
    let img = image::GrayImage::from_raw(SIZE as u32, SIZE as u32, data.to_vec()).expect("sized");
    Ok(encode::png(&image::DynamicImage::ImageLuma8(img))?)
}

fn png_rgb(data: &[u8]) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(SIZE as u32, SIZE as u32, data.to_vec()).expect("sized");
    Ok(encode::png(&image::DynamicImage::ImageRgb8(img))?)
}

/// Writes the benchmark into `out` (every file atomically) and returns its manifest. The same
/// plan always gives the same bytes.
pub fn generate(plan: &Plan, out: &Path, progress: &dyn Progress) -> Result<Manifest> {
    let manifest = Manifest::new(plan.clone());
    progress.start(((plan.train_per_class + plan.test_per_class) * SHAPES.len()) as u64, "images");
    let jobs: Vec<(usize, usize, usize)> = (0..SPLITS.len())
        .flat_map(|s| {
            let per = if s == 0 { plan.train_per_class } else { plan.test_per_class };
            (0..SHAPES.len()).flat_map(move |c| (0..per).map(move |i| (s, c, i)))
        })
        .collect();
    let truths = jobs
        .par_iter()
        .map(|&(s, c, i)| {
            let mut rng = scene::image_rng(plan.seed, s, c, i);
            let cues = draw_cues(plan, s, c, &mut rng);
            let scene = scene::render(c, &cues, &mut rng);
            let (split, wnid) = (SPLITS[s], wnid(c));
            let image = format!("{wnid}_{i:04}");
            let path = format!("{split}/{wnid}/{image}.png");
            let regions = format!("ground_truth/{split}/{wnid}/{image}.png");
            write(&out.join(&path), &png_rgb(&scene.rgb)?)?;
            write(&out.join(&regions), &png_gray(&scene.regions)?)?;
            progress.advance(1);
            Ok(Truth {
                split: split.into(),
                class: c,
                image,
                path,
                regions,
                cues: cues.iter().map(|c| c.name().to_owned()).collect(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    progress.finish();
    let lines: String = truths.iter().map(|t| serde_json::to_string(t).expect("plain data") + "\n").collect();
    write(&out.join("ground_truth.jsonl"), lines.as_bytes())?;
    write(
        &out.join("manifest.json"),
        (serde_json::to_string_pretty(&manifest).expect("plain data") + "\n").as_bytes(),
    )?;
    Ok(manifest)
}

/// Reads `ground_truth.jsonl`.
pub fn read_truth(root: &Path) -> Result<Vec<Truth>> {
    let path = root.join("ground_truth.jsonl");
    let text = salient_engine::fsutil::read_text(&path)?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Data(format!("{}: line {}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Reads one region PNG (`SIZE×SIZE` codes).
pub fn read_regions(root: &Path, truth: &Truth) -> Result<Vec<u8>> {
    let path = root.join(&truth.regions);
    let img =
        image::open(&path).map_err(|e| Error::Data(format!("{}: cannot read ground truth: {e}", path.display())))?;
    let gray = img.to_luma8();
    if gray.dimensions() != (SIZE as u32, SIZE as u32) {
        return Err(Error::Data(format!(
            "{}: ground truth is {:?}, expected {SIZE}×{SIZE}",
            path.display(),
            gray.dimensions()
        )));
    }
    Ok(gray.into_raw())
}
