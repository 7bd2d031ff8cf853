//! `--weights` and `--backend`: which model, on which device.

use std::path::PathBuf;

use salient_engine::{Backend, Engine};

use crate::commands::fetch::default_model_path;
use crate::error::Result;

/// The synthetic benchmark's robust model (`models/synth-robust.safetensors`), compiled in: the
/// default when no weights are given, so every command runs anywhere.
pub const BUILTIN_WEIGHTS: &[u8] = include_bytes!("../../models/synth-robust.safetensors");
const BUILTIN_SOURCE: &str = "built-in model (models/synth-robust.safetensors)";

#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// Model weights: the robustness library's checkpoint (imagenet_l2_3_0.pt), a torchvision
    /// state dict (.pth) or safetensors. Default: $SALIENT_WEIGHTS, then the file
    /// `salient fetch-model` saved, then the built-in model of the synthetic benchmark (with a
    /// warning: it knows 10 shapes, not ImageNet).
    #[arg(long, short = 'w', value_name = "FILE", env = "SALIENT_WEIGHTS")]
    pub weights: Option<PathBuf>,

    /// Compute backend: auto, flex (CPU), wgpu or cuda (the GPU ones when this build includes
    /// them). auto: cuda if compiled in and an NVIDIA driver is loaded, else wgpu if compiled in,
    /// else flex.
    #[arg(long, value_name = "NAME", default_value = "auto")]
    pub backend: Backend,
}

impl ModelArgs {
    /// The weights file in use, after the defaults (`None`: the built-in benchmark model).
    pub fn weights_path(&self) -> Option<PathBuf> {
        self.weights.clone().or_else(|| default_model_path().filter(|p| p.exists()))
    }

    /// What identifies the weights in a run manifest: their SHA-256.
    pub fn fingerprint(&self) -> Result<String> {
        match self.weights_path() {
            Some(p) => crate::pipeline::manifest::file_sha256(&p),
            None => Ok(crate::pipeline::manifest::bytes_sha256(BUILTIN_WEIGHTS)),
        }
    }

    /// Loads the weights (see `--weights` for the order of defaults).
    pub fn engine(&self) -> Result<Engine> {
        let device = self.backend.device()?;
        match self.weights_path() {
            Some(path) => Ok(Engine::load(&path, &device)?),
            None => {
                eprintln!(
                    "warning: no weights given (--weights, $SALIENT_WEIGHTS or `salient fetch-model`): using the \
                     built-in model of the synthetic benchmark, which knows 10 shapes, not ImageNet"
                );
                let sd = salient_engine::StateDict::from_bytes(BUILTIN_SOURCE, BUILTIN_WEIGHTS)?;
                Ok(Engine::from_state_dict(&sd, &device)?)
            }
        }
    }
}

/// Checks feature indices against the model; the message gives the valid range.
pub fn check_features(engine: &Engine, features: &[usize]) -> Result<()> {
    let f = engine.config.feature_dim();
    match features.iter().find(|&&j| j >= f) {
        Some(j) => Err(crate::error::Error::Usage(format!(
            "feature {j} does not exist: this model has {f} features (0–{})",
            f - 1
        ))),
        None => Ok(()),
    }
}

/// Checks a class index against the model.
pub fn check_class(engine: &Engine, class: usize) -> Result<()> {
    let c = engine.config.num_classes;
    if class >= c {
        return Err(crate::error::Error::Usage(format!(
            "class {class} does not exist: this model has {c} classes (0–{})",
            c - 1
        )));
    }
    Ok(())
}
