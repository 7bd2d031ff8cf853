//! `salient attack`: amplify one neural feature in an image (the paper's "feature attack").

use std::io::Write;
use std::path::PathBuf;

use image::DynamicImage;
use salient_engine::attack::AttackOptions;
use salient_engine::decode;
use salient_engine::engine::{block_on, host, to_images};
use serde::Serialize;

use crate::error::Result;
use crate::model::{ModelArgs, check_features};
use crate::output::save_png;
use crate::progress;

/// Amplify a neural feature by gradient ascent and write the resulting image.
///
/// Starting from the image's 224×224 view x, repeats x ← clamp(x + S·g/‖g‖₂, 0, 1) where g is
/// the gradient of feature J with respect to the pixels: what the feature "looks for" grows
/// visibly. --json prints {"feature": J, "before": r_J(x0), "after": r_J(xN)}.
#[derive(clap::Args, Debug)]
pub struct AttackArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// Neural feature index (0–2047 for ResNet-50).
    #[arg(long, short = 'f', value_name = "J")]
    feature: usize,

    /// Gradient-ascent steps.
    #[arg(long, default_value_t = 100, value_name = "N")]
    steps: usize,

    /// L2 length of each step, in [0, 1] pixel units over all 3·224·224 values.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    step_size: f32,

    /// The image (JPEG, PNG, WebP).
    #[arg(value_name = "IMAGE")]
    image: PathBuf,

    /// Where to write the amplified image (PNG).
    #[arg(long, short = 'o', value_name = "OUT.png")]
    out: PathBuf,

    /// Print the feature's value before and after as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    /// Version of this output's layout ([`salient_pipeline::SCHEMA`]).
    schema: u32,
    feature: usize,
    before: f32,
    after: f32,
}

pub fn run(args: AttackArgs) -> Result<()> {
    if !args.step_size.is_finite() || args.step_size < 0.0 {
        return Err(crate::error::Error::Usage(format!(
            "--step-size must be a non-negative number, not {}",
            args.step_size
        )));
    }
    let engine = args.model.engine()?;
    check_features(&engine, &[args.feature])?;
    let view = engine.view.apply(&decode::load_image(&args.image)?);
    let bar = progress::bar(args.steps as u64, "steps", args.json);
    let options = AttackOptions { steps: args.steps, step_size: args.step_size };
    let attacked = engine.attack(engine.batch(&[view]), args.feature, options, |_| bar.inc(1));
    bar.finish_and_clear();
    let before = block_on(host(attacked.before))?[0];
    let after = block_on(host(attacked.after))?[0];
    let img = block_on(to_images(attacked.images))?.remove(0);
    save_png(&DynamicImage::ImageRgb8(img), &args.out)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&Report { schema: salient_pipeline::SCHEMA, feature: args.feature, before, after })
                .expect("plain data")
        )?;
    } else {
        writeln!(
            out,
            "feature {}: {before:.4} → {after:.4} after {} steps of {}; wrote {}",
            args.feature,
            args.steps,
            args.step_size,
            args.out.display()
        )?;
    }
    Ok(())
}
