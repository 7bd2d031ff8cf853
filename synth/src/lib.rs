//! The ground-truth benchmark: a generated dataset of shapes with planted spurious cues
//! ([`generate`], one image drawn by [`scene`]), small models trained on it ([`train`]), and a
//! score of how well the pipeline finds what was planted ([`score`]). The `salient synth`
//! subcommands parse arguments and call these.

pub mod generate;
pub mod scene;
pub mod score;
pub mod train;

pub use salient_pipeline::{Error, Result};
