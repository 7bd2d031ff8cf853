//! `salient convert`: any supported checkpoint to plain safetensors (what the browser loads).

use std::path::PathBuf;

use salient_engine::burn::tensor::Device;
use salient_engine::checkpoint::{Format, Layout, write_safetensors};
use salient_engine::engine::describe;
use salient_engine::{ResNetConfig, StateDict};

use crate::error::{Error, Result};

/// Convert a checkpoint to safetensors with torchvision key names.
///
/// Reads the robustness library's checkpoint (legacy or zip torch format, as published), a
/// torchvision state dict or safetensors; checks it is a complete ResNet; writes only the
/// model's tensors (no optimizer state, no duplicates), with the input normalization in the
/// file's metadata. --half stores f16 (half the size; what the web explorer downloads).
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// The checkpoint to read.
    #[arg(value_name = "IN")]
    input: PathBuf,

    /// The safetensors file to write.
    #[arg(value_name = "OUT.safetensors")]
    output: PathBuf,

    /// Store 16-bit floats.
    #[arg(long)]
    half: bool,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    if args.output.extension().is_none_or(|e| e != "safetensors") {
        return Err(Error::Usage(format!(
            "{}: the output is safetensors; name it *.safetensors",
            args.output.display()
        )));
    }
    let mut sd = StateDict::load(&args.input)?;
    let config = ResNetConfig::infer(&sd)?;
    let (_, used) = config.load_with_keys(&sd, &Device::flex())?;
    let before = sd.tensors.len();
    sd.tensors.retain(|k, _| used.contains(k));
    write_safetensors(&sd, &args.output, args.half)?;
    let size = std::fs::metadata(&args.output).map(|m| m.len()).unwrap_or(0);
    let format = match sd.format {
        Format::TorchZip => "PyTorch zip format",
        Format::TorchLegacy => "PyTorch legacy format",
        Format::Safetensors => "safetensors",
    };
    let layout = match sd.layout {
        Layout::Robustness => "robustness-library checkpoint",
        Layout::DataParallel => "DataParallel state dict",
        Layout::Torchvision => "torchvision state dict",
    };
    println!(
        "{}: {layout} ({format}), {}, {} of {before} tensors used\nwrote {} ({}, {:.1} MB)",
        args.input.display(),
        describe(&config),
        used.len(),
        args.output.display(),
        if args.half { "f16" } else { "f32" },
        size as f64 / 1e6
    );
    Ok(())
}
