//! Salient's engine: the robust ResNet-50 of the Salient ImageNet method (Singla & Feizi,
//! ICLR 2022) in burn, and the method's numerics: neural features, feature importance,
//! neural activation maps as soft masks, heatmaps and feature attacks.
//!
//! The same code compiles natively (batch work, the `salient` CLI) and to wasm32 (the
//! browser explorer); the compute backend is picked at run time among those compiled in
//! ([`Backend`]). Without the `model` feature only the model-free half compiles (labels,
//! layouts, file reading, masks from maps): the explorer's browsing pages use just that.

pub mod annotations;
#[cfg(feature = "model")]
pub mod attack;
#[cfg(feature = "model")]
pub mod backend;
pub mod checkpoint;
pub mod colormap;
#[cfg(feature = "model")]
pub mod cpu;
pub mod dataset;
pub mod decode;
pub mod encode;
#[cfg(feature = "model")]
pub mod engine;
pub mod error;
pub mod evaluation;
pub mod fsutil;
pub mod imagenet;
pub mod importance;
#[cfg(feature = "model")]
pub mod model;
pub mod nam;
pub mod preprocess;
pub mod resample;
pub mod site;
pub mod table;
#[cfg(feature = "train")]
pub mod train;

/// The burn version the engine is built on, for crates that hold its tensors.
#[cfg(feature = "model")]
pub use burn;

#[cfg(feature = "model")]
pub use backend::Backend;
pub use checkpoint::StateDict;
#[cfg(feature = "model")]
pub use engine::{Engine, ImageOutput};
pub use error::{Error, Result};
#[cfg(feature = "model")]
pub use model::{ResNet, ResNetConfig};
pub use nam::FeatureMaps;

/// Number of neural features of ResNet-50 (the method's 2048).
pub const RESNET50_FEATURES: usize = 2048;
