//! `salient mask`: a soft mask (and heatmap) of neural features over an image.

use std::path::PathBuf;

use image::{DynamicImage, GrayImage};
use salient_engine::{colormap, decode, nam};

use crate::error::Result;
use crate::model::{ModelArgs, check_features};
use crate::output::save_png;

/// Write the soft mask of one or more neural features over an image.
///
/// The mask is the feature's 7×7 layer4 activation map divided by its maximum, upsampled
/// bilinearly to the view the model sees (224×224 for ImageNet models: Resize(256),
/// CenterCrop(224)); several
/// features combine by pixelwise maximum. It is written as an 8-bit grayscale PNG with value
/// round(255·mask). --overlay also writes the heatmap as the paper draws it (JET colours over
/// the image; red = high activation).
#[derive(clap::Args, Debug)]
pub struct MaskArgs {
    #[command(flatten)]
    model: ModelArgs,

    /// Neural feature index (0–2047 for ResNet-50); several, comma-separated, combine by maximum.
    #[arg(long, short = 'f', value_name = "J[,K,...]", value_delimiter = ',', required = true)]
    feature: Vec<usize>,

    /// The image (JPEG, PNG, WebP).
    #[arg(value_name = "IMAGE")]
    image: PathBuf,

    /// Where to write the mask (PNG).
    #[arg(long, short = 'o', value_name = "OUT.png")]
    out: PathBuf,

    /// Also write the heatmap overlay here (PNG).
    #[arg(long, value_name = "OVERLAY.png")]
    overlay: Option<PathBuf>,
}

pub fn run(args: MaskArgs) -> Result<()> {
    let engine = args.model.engine()?;
    check_features(&engine, &args.feature)?;
    let view = engine.view.apply(&decode::load_image(&args.image)?);
    let out = engine.infer(std::slice::from_ref(&view), true)?.remove(0);
    let maps = out.maps.expect("maps were asked for");
    let size = engine.view.side();
    let mask = maps.soft_mask(&args.feature, size);
    let gray = GrayImage::from_raw(size as u32, size as u32, nam::to_gray(&mask)).expect("sized mask");
    save_png(&DynamicImage::ImageLuma8(gray), &args.out)?;
    if let Some(path) = &args.overlay {
        save_png(&DynamicImage::ImageRgb8(colormap::overlay(&view, &mask)), path)?;
    }
    Ok(())
}
