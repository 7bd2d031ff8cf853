//! Core/spurious labels read and summarized (`salient labels`): the paper's MTurk results or
//! Salient's own CSV.

use std::path::PathBuf;

use salient_engine::annotations::{Bounds, ClassLabels, Summary};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::files::load_annotations_reporting;
use crate::progress::Progress;

#[derive(Debug, Clone)]
pub struct LabelsParams {
    /// The labels file.
    pub annotations: PathBuf,
    /// Classes and features the labels may refer to.
    pub bounds: Bounds,
}

/// The labels per class, with counts (`salient labels --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelsReport {
    /// Version of this output's layout ([`crate::SCHEMA`]).
    #[serde(default = "crate::schema")]
    pub schema: u32,
    pub summary: Summary,
    pub classes: Vec<ClassLabels>,
}

/// Reads the labels; answers not counted are reported through `progress`.
pub fn labels(params: &LabelsParams, progress: &dyn Progress) -> Result<LabelsReport> {
    let annotations = load_annotations_reporting(&params.annotations, params.bounds, progress)?;
    Ok(LabelsReport { schema: crate::SCHEMA, summary: annotations.summary(), classes: annotations.class_labels() })
}
