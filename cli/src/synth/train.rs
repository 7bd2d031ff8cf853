//! `salient synth train`: a small ResNet trained on the benchmark, robustly (L2 PGD) or plainly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use salient_engine::model::{BlockKind, Stem};
use salient_engine::preprocess::View;
use salient_engine::train::{TrainOptions, TrainSet, train};
use salient_engine::{ResNet, ResNetConfig};
use serde::Serialize;

use super::generate::{Manifest, Truth, read_truth};
use super::scene::SIZE;
use crate::error::{Error, Result};
use crate::progress;

/// Trains a small ResNet (the same model code as ResNet-50: basic blocks [1, 1, 1, 1], a compact
/// stem, 7×7 layer4 maps on the 112×112 images) on the benchmark's training split, with L2 PGD
/// adversarial training as the robustness library does (`--epsilon 0`: plain training). Writes
/// safetensors with the class names and input view in its metadata, and next to it a JSON
/// report: the options, the time taken, and test accuracy with and without each planted cue.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The benchmark (from `salient synth generate`).
    #[arg(long)]
    data: PathBuf,
    /// Output weights (.safetensors); the report goes to the same path with .json.
    #[arg(short, long)]
    out: PathBuf,
    /// L2 radius of the PGD perturbation, pixels in [0, 1]; 0 trains plainly.
    #[arg(long, default_value_t = 1.0)]
    epsilon: f32,
    /// PGD steps per batch.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// PGD step size [default: 2.5·ε/steps, the robustness library's rule].
    #[arg(long)]
    step_size: Option<f32>,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate (cosine decay to 0).
    #[arg(long, default_value_t = 5e-3)]
    lr: f64,
    /// Channels of the first stage (features: 8× this).
    #[arg(long, default_value_t = 8)]
    width: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute backend: auto, flex (CPU), wgpu or cuda (the GPU ones when this build includes
    /// them). auto: cuda if compiled in and an NVIDIA driver is loaded, else wgpu if compiled in,
    /// else flex.
    #[arg(long, value_name = "NAME", default_value = "auto")]
    backend: salient_engine::Backend,
}

#[derive(Serialize)]
struct Report {
    command: String,
    config: String,
    epsilon: f32,
    pgd_steps: usize,
    pgd_step_size: f32,
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    seed: u64,
    train_images: usize,
    seconds: f64,
    final_train_loss: f32,
    final_train_accuracy: f32,
    test_accuracy: f64,
    /// Test accuracy of each class with a planted cue, on its images with and without the cue.
    cue_reliance: Vec<CueReliance>,
}

#[derive(Serialize)]
pub struct CueReliance {
    class: String,
    cue: String,
    with_cue: f64,
    without_cue: f64,
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
            image::open(&path).map_err(|e| Error::Usage(format!("{}: cannot read: {e}", path.display())))?.to_rgb8();
        if img.dimensions() != (SIZE as u32, SIZE as u32) {
            return Err(Error::Usage(format!("{}: {:?}, expected {SIZE}×{SIZE}", path.display(), img.dimensions())));
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

pub fn run(a: TrainArgs) -> Result<()> {
    if a.out.extension().is_none_or(|e| e != "safetensors") {
        return Err(Error::Usage(format!("{}: the output is safetensors; name it *.safetensors", a.out.display())));
    }
    let manifest = Manifest::read(&a.data)?;
    let truths = read_truth(&a.data)?;
    let (train_set, _) = load_split(&a.data, &truths, "train")?;
    if train_set.is_empty() {
        return Err(Error::Usage(format!("{}: no training images", a.data.display())));
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
    eprintln!(
        "training {} on {} images, {} ({} epochs)",
        salient_engine::engine::describe(&config),
        train_set.len(),
        if a.epsilon > 0.0 {
            format!("L2 PGD ε={} ({} steps of {})", a.epsilon, a.steps, options.pgd_step_size)
        } else {
            "plainly".into()
        },
        a.epochs
    );
    let started = Instant::now();
    let bar = progress::bar(0, "batches", false);
    let mut last = None;
    let model = train(
        &config,
        &train_set,
        &options,
        &device,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
        |r| {
            bar.suspend(|| {
                eprintln!("epoch {:>2}: loss {:.4}, train accuracy {:.1}%", r.epoch, r.loss, 100.0 * r.accuracy)
            });
            last = Some(r);
        },
    );
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    let mut sd = model.state_dict(&a.out.display().to_string());
    sd.class_names = Some(manifest.class_names());
    sd.view = Some(VIEW);
    salient_engine::checkpoint::write_safetensors(&sd, &a.out, false)?;

    let (test_set, test_truths) = load_split(&a.data, &truths, "test")?;
    let predicted = predict(&model, &test_set);
    let correct = test_truths.iter().zip(&predicted).filter(|(t, p)| t.class == **p).count();
    let test_accuracy = correct as f64 / test_set.len().max(1) as f64;
    let cue_reliance = cue_reliance(&manifest, &test_truths, &predicted);
    let last = last.expect("at least one epoch");
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
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
    let json = a.out.with_extension("json");
    salient_engine::fsutil::write_atomic(
        &json,
        (serde_json::to_string_pretty(&report).expect("plain data") + "\n").as_bytes(),
    )?;
    println!(
        "trained in {seconds:.0} s; test accuracy {:.1}%; wrote {} and {}",
        100.0 * test_accuracy,
        a.out.display(),
        json.display()
    );
    println!("test accuracy of each cue's class, on its test images with / without the cue:");
    for r in &report.cue_reliance {
        println!("  {:<12} {:<10} {:>5.1}% / {:>5.1}%", r.class, r.cue, 100.0 * r.with_cue, 100.0 * r.without_cue);
    }
    Ok(())
}
