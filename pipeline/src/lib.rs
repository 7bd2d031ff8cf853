//! Salient's dataset pipeline as a library. Every stage is a function of typed parameters
//! that reports through a [`Progress`] and returns typed outputs; the `salient` CLI parses
//! arguments into these parameters, and the Python package calls the same functions.
//!
//! - [`model`]: which weights (the CLI's defaults, the built-in model) and their fingerprint.
//! - [`masks`]: a Salient dataset (a build's index, or the paper's release) grouped by class
//!   and feature: what `eval` and the Python dataset read.
//! - [`eval`]: the paper's noise test, generic over the classifier ([`eval::Classify`]).
//! - [`files`], [`manifest`], [`shard`], [`folder`]: atomic outputs, run manifests and
//!   `--resume`, sharding, the ImageNet folder layout.

pub mod batches;
pub mod error;
pub mod eval;
pub mod files;
pub mod folder;
pub mod inputs;
pub mod manifest;
pub mod masks;
pub mod model;
pub mod plot;
pub mod progress;
pub mod shard;

pub use error::{Error, Result};
pub use progress::{Progress, Quiet};
