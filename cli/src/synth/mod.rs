//! `salient synth`: the ground-truth benchmark. A generated dataset with planted spurious cues,
//! small models trained on it (robust and plain), and a score of how well the pipeline finds
//! the planted cues.

mod generate;
mod scene;
mod score;
mod train;

use clap::{Args, Subcommand};

use crate::error::Result;

/// The synthetic benchmark with planted spurious features.
///
/// Ten classes of shapes (circle, square, …); five cues (diagonal stripes, a watermark glyph, a
/// checkered ball, polka dots, a hazard bar) each planted in one class's training images at a
/// set rate (0.9, 0.85, 0.8, 0.6, 0.4) and drawn independently of the class in the test split.
/// Every image ships its ground-truth regions, so discovery can be scored.
///
///   salient synth generate -o bench/                       # the images and ground truth
///   salient synth train --data bench/ -o robust.safetensors            # L2 PGD, ε = 1
///   salient synth train --data bench/ --epsilon 0 -o plain.safetensors # the baseline
///   salient synth score --data bench/ --robust robust.safetensors --plain plain.safetensors -o run/
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SynthArgs {
    #[command(subcommand)]
    command: SynthCommand,
}

#[derive(Subcommand, Debug)]
enum SynthCommand {
    Generate(generate_cmd::GenerateArgs),
    Train(train::TrainArgs),
    Score(score::ScoreArgs),
}

pub fn run(args: SynthArgs) -> Result<()> {
    match args.command {
        SynthCommand::Generate(a) => generate_cmd::run(a),
        SynthCommand::Train(a) => train::run(a),
        SynthCommand::Score(a) => score::run(a),
    }
}

mod generate_cmd {
    use std::path::PathBuf;

    use clap::Args;

    use super::generate::{Plan, generate};
    use crate::error::Result;
    use crate::progress;

    /// Writes the benchmark: DIR/train/<wnid>/*.png, DIR/test/<wnid>/*.png (the ImageNet
    /// layout), DIR/ground_truth/… (one region PNG per image), DIR/ground_truth.jsonl (the cues
    /// in each image) and DIR/manifest.json (what is planted where). The same seed gives the
    /// same bytes.
    #[derive(Args, Debug)]
    pub struct GenerateArgs {
        /// Output folder.
        #[arg(short, long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Training images per class.
        #[arg(long, default_value_t = 200)]
        train_per_class: usize,
        /// Test images per class.
        #[arg(long, default_value_t = 50)]
        test_per_class: usize,
    }

    pub fn run(a: GenerateArgs) -> Result<()> {
        let plan = Plan::new(a.seed, a.train_per_class, a.test_per_class);
        let total = (a.train_per_class + a.test_per_class) * super::scene::SHAPES.len();
        let bar = progress::bar(total as u64, "images", false);
        let manifest = generate(&plan, &a.out, || bar.inc(1))?;
        bar.finish_and_clear();
        println!("wrote {total} images of {} classes to {}", manifest.classes.len(), a.out.display());
        for c in &manifest.classes {
            match &c.cue {
                Some(cue) => {
                    println!("  {:<12} cue {cue:<10} in {:.0}% of its training images", c.wnid, c.train_rate * 100.0)
                }
                None => println!("  {:<12} no planted cue", c.wnid),
            }
        }
        println!(
            "every cue also appears in {:.0}% of other classes' training images and in {:.0}% of all test images",
            plan.base_rate * 100.0,
            plan.test_rate * 100.0
        );
        Ok(())
    }
}
