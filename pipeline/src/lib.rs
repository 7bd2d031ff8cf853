//! Salient's dataset pipeline as a library. Every stage is a function of typed parameters
//! that reports through a [`Progress`] and returns typed outputs; the `salient` CLI parses
//! arguments into these parameters, and the Python package calls the same functions.
//!
//! - [`model`]: which weights (the CLI's defaults, the built-in model) and their fingerprint.
//! - [`masks`]: a Salient dataset (a build's index, or the paper's release) grouped by class
//!   and feature: what `eval` and the Python dataset read.
//! - The stages, in order: [`discover`] (top features per class, for annotation), [`labels`],
//!   [`build`] (the soft masks), [`merge`] (sharded runs joined), [`eval`] (the paper's noise
//!   test, generic over the classifier: [`eval::Classify`]), [`spuriosity`]. Each output file's
//!   schema is a public serde type here ([`discover::DiscoverIndex`], [`build::BuildSummary`],
//!   [`eval::Summary`], ...), read by every consumer through it.
//! - [`files`], [`manifest`], [`shard`], [`folder`]: atomic outputs, run manifests and
//!   `--resume`, sharding, the ImageNet folder layout.

pub mod batches;
pub mod bootstrap;
pub mod build;
pub mod discover;
pub mod error;
pub mod eval;
pub mod files;
pub mod folder;
pub mod inputs;
pub mod labels;
pub mod manifest;
pub mod masks;
pub mod merge;
pub mod model;
pub mod plot;
pub mod progress;
pub mod shard;
pub mod spuriosity;
pub mod top;

pub use error::{Error, Result};

/// Version of the layout of every JSON file and JSON line Salient writes (each carries it as
/// `schema`; a folder's `salient-run.json` also versions its JSON Lines files). Raised when a
/// field changes meaning or goes away; new fields do not raise it.
pub const SCHEMA: u32 = 1;

/// [`SCHEMA`], for serde defaults: files written before the field existed have layout 1.
pub fn schema() -> u32 {
    SCHEMA
}
pub use progress::{Progress, Quiet};
