//! `salient synth train`: a small ResNet trained on the benchmark, robustly (L2 PGD) or plainly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use salient_engine::model::{BlockKind, Stem};
use salient_engine::preprocess::View;
use salient_engine::train::{TrainOptions, TrainSet, train};
use salient_engine::{ResNet, ResNetConfig};
use serde::Serialize;

use salient_engine::train::EpochReport;
use salient_pipeline::Progress;

use crate::generate::{Manifest, Truth, read_truth};
use crate::scene::SIZE;
use crate::{Error, Result};

/// How to train (`salient synth train`).
#[derive(Debug, Clone)]
pub struct TrainParams {
    /// The benchmark (from [`crate::generate::generate`]).
    pub data: PathBuf,
    /// Output weights (.safetensors); the report goes to the same path with .json.
    pub out: PathBuf,
    /// L2 radius of the PGD perturbation, pixels in [0, 1]; 0 trains plainly.
    pub epsilon: f32,
    /// PGD steps per batch.
    pub steps: usize,
    /// PGD step size (`None`: 2.5·ε/steps, the robustness library's rule).
    pub step_size: Option<f32>,
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam's learning rate (cosine decay to 0).
    pub lr: f64,
    /// Channels of the first stage (features: 8× this).
    pub width: usize,
    pub seed: u64,
    pub backend: salient_engine::Backend,
    /// The command line, for the report.
    pub command: String,
}

/// The training report, written beside the weights.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    #[serde(default = "salient_pipeline::schema")]
    pub schema: u32,
    pub command: String,
    pub config: String,
    pub epsilon: f32,
    pub pgd_steps: usize,
    pub pgd_step_size: f32,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub train_images: usize,
    pub seconds: f64,
    pub final_train_loss: f32,
    pub final_train_accuracy: f32,
    pub test_accuracy: f64,
    /// Test accuracy of each class with a planted cue, on its images with and without the cue.
    pub cue_reliance: Vec<CueReliance>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CueReliance {
    pub class: String,
    pub cue: String,
    pub with_cue: f64,
    pub without_cue: f64,
}

/// The synthetic model's input view: the whole 112×112 image, no resize.
pub const VIEW: View = View { resize: SIZE as u32, crop: SIZE as u32 };

pub fn config(width: usize, classes: usize) -> ResNetConfig {
    ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
        .with_base_width(width)
        .with_num_classes(classes)
        .with_stem(Stem::Compact)
}

/// Reads the images of `split` with their class labels.
fn load_split<'a>(root: &Path, truths: &'a [Truth], split: &str) -> Result<(TrainSet, Vec<&'a Truth>)> {
    let chosen: Vec<&Truth> = truths.iter().filter(|t| t.split == split).collect();
    let mut pixels = Vec::with_capacity(chosen.len() * SIZE * SIZE * 3);
    for t in &chosen {
        let path = root.join(&t.path);
        let img =
            image::open(&path).map_err(|e| Error::Data(format!("{}: cannot read: {e}", path.display())))?.to_rgb8();
        if img.dimensions() != (SIZE as u32, SIZE as u32) {
            return Err(Error::Data(format!("{}: {:?}, expected {SIZE}×{SIZE}", path.display(), img.dimensions())));
        }
        pixels.extend_from_slice(img.as_raw());
    }
    let labels = chosen.iter().map(|t| t.class).collect();
    Ok((TrainSet { pixels, labels, side: SIZE }, chosen))
}

/// Predicted class of every image of `set`.
pub fn predict(model: &ResNet, set: &TrainSet) -> Vec<usize> {
    let device = model.fc.weight.val().device();
    let mut out = Vec::with_capacity(set.len());
    for start in (0..set.len()).step_by(64) {
        let idx: Vec<usize> = (start..set.len().min(start + 64)).collect();
        let x = set.batch(&idx, &vec![false; idx.len()], &device);
        let pred =
            model.forward(x).logits.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().unwrap_or_default();
        out.extend(pred.into_iter().map(|p| p as usize));
    }
    out
}

/// Accuracy per planted cue's class, on test images with and without that cue.
pub fn cue_reliance(manifest: &Manifest, truths: &[&Truth], predicted: &[usize]) -> Vec<CueReliance> {
    manifest
        .classes
        .iter()
        .filter_map(|c| c.cue.as_ref().map(|cue| (c, cue)))
        .map(|(c, cue)| {
            let acc = |with: bool| {
                let (mut n, mut ok) = (0usize, 0usize);
                for (t, &p) in truths.iter().zip(predicted) {
                    if t.class == c.index && t.cues.contains(cue) == with {
                        n += 1;
                        ok += (p == t.class) as usize;
                    }
                }
                if n == 0 { f64::NAN } else { ok as f64 / n as f64 }
            };
            CueReliance { class: c.wnid.clone(), cue: cue.clone(), with_cue: acc(true), without_cue: acc(false) }
        })
        .collect()
}

/// Trains the model, writes the weights (safetensors, with the class names and input view in
/// its metadata) and the report beside them, and returns the report. `on_epoch` hears of each
/// finished epoch.
pub fn train_model(
    a: &TrainParams,
    progress: &dyn Progress,
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<TrainReport> {
    if a.out.extension().is_none_or(|e| e != "safetensors") {
        return Err(Error::Usage(format!("{}: the output is safetensors; name it *.safetensors", a.out.display())));
    }
    let manifest = Manifest::read(&a.data)?;
    let truths = read_truth(&a.data)?;
    let (train_set, _) = load_split(&a.data, &truths, "train")?;
    if train_set.is_empty() {
        return Err(Error::Data(format!("{}: no training images", a.data.display())));
    }
    let device = a.backend.device()?;
    let config = config(a.width, manifest.classes.len());
    let options = TrainOptions {
        epochs: a.epochs,
        batch_size: a.batch_size.max(1),
        learning_rate: a.lr,
        epsilon: a.epsilon,
        pgd_steps: a.steps,
        pgd_step_size: a.step_size.unwrap_or(2.5 * a.epsilon / a.steps.max(1) as f32),
        seed: a.seed,
    };
    progress.message(&format!(
        "training {} on {} images, {} ({} epochs)",
        salient_engine::engine::describe(&config),
        train_set.len(),
        if a.epsilon > 0.0 {
            format!("L2 PGD ε={} ({} steps of {})", a.epsilon, a.steps, options.pgd_step_size)
        } else {
            "plainly".into()
        },
        a.epochs
    ));
    let started = Instant::now();
    let mut last = None;
    let done_so_far = std::cell::Cell::new(None::<usize>);
    let model = train(
        &config,
        &train_set,
        &options,
        &device,
        |done, total| {
            match done_so_far.get() {
                None => {
                    progress.start(total as u64, "batches");
                    progress.advance(done as u64);
                }
                Some(before) => progress.advance(done.saturating_sub(before) as u64),
            }
            done_so_far.set(Some(done));
        },
        |r| {
            on_epoch(&r);
            last = Some(r);
        },
    );
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();

    let mut sd = model.state_dict(&a.out.display().to_string());
    sd.class_names = Some(manifest.class_names());
    sd.view = Some(VIEW);
    salient_engine::checkpoint::write_safetensors(&sd, &a.out, false)?;

    let (test_accuracy, cue_reliance) = test_reliance(&model, &a.data, &manifest, &truths)?;
    let last = last.expect("at least one epoch");
    let report = TrainReport {
        schema: salient_pipeline::SCHEMA,
        command: a.command.clone(),
        config: salient_engine::engine::describe(&config),
        epsilon: a.epsilon,
        pgd_steps: a.steps,
        pgd_step_size: options.pgd_step_size,
        epochs: a.epochs,
        batch_size: options.batch_size,
        learning_rate: a.lr,
        seed: a.seed,
        train_images: train_set.len(),
        seconds,
        final_train_loss: last.loss,
        final_train_accuracy: last.accuracy,
        test_accuracy,
        cue_reliance,
    };
    salient_engine::fsutil::write_atomic(
        &report_path(&a.out),
        (serde_json::to_string_pretty(&report).expect("plain data") + "\n").as_bytes(),
    )?;
    Ok(report)
}

/// The model's accuracy on the test split, and per planted cue's class on its test images with
/// and without the cue: how much the model leans on each cue.
pub fn test_reliance(
    model: &ResNet,
    data: &Path,
    manifest: &Manifest,
    truths: &[Truth],
) -> Result<(f64, Vec<CueReliance>)> {
    let (test_set, test_truths) = load_split(data, truths, "test")?;
    let predicted = predict(model, &test_set);
    let correct = test_truths.iter().zip(&predicted).filter(|(t, p)| t.class == **p).count();
    Ok((correct as f64 / test_set.len().max(1) as f64, cue_reliance(manifest, &test_truths, &predicted)))
}

/// Where the report of weights at `out` goes.
pub fn report_path(out: &Path) -> PathBuf {
    out.with_extension("json")
}
