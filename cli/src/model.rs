//! `--weights` and `--backend`: which model, on which device.

use std::path::PathBuf;

use salient_engine::{Backend, Engine};

use crate::error::Result;

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
    /// What identifies the weights in a run manifest: their SHA-256.
    pub fn fingerprint(&self) -> Result<String> {
        Ok(salient_pipeline::model::fingerprint(self.weights.as_deref())?)
    }

    /// Loads the weights (see `--weights` for the order of defaults).
    pub fn engine(&self) -> Result<Engine> {
        Ok(salient_pipeline::model::load(self.weights.as_deref(), self.backend)?)
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
