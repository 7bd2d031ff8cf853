//! The static site's data files, written by `salient site` and read by the web explorer. All
//! paths are relative to the site's root, so the site works under any URL prefix.
//!
//! ```text
//! data/site.json             SiteIndex: the class list (small: the first page loads fast)
//! data/classes/<class>.json  ClassPage: a class's features and their images
//! data/annotate.json         AnnotateIndex: the (class, feature) pairs to judge
//! data/thumbs/, masks/, attacks/, pairs/   images
//! data/model/model.safetensors.<i>         the model for the upload page, f16, in chunks
//! ```

use serde::{Deserialize, Serialize};

use crate::annotations::Label;

pub const INDEX: &str = "data/site.json";

pub fn class_page(class: usize) -> String {
    format!("data/classes/{class}.json")
}

pub const ANNOTATE: &str = "data/annotate.json";

/// What `salient site --notes` adds to a site: text about classes and features, and ground-truth
/// overlays of images (the synthetic benchmark writes one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteNotes {
    /// Class index → note.
    #[serde(default)]
    pub classes: std::collections::BTreeMap<usize, String>,
    /// `"<class>/<feature>"` → note.
    #[serde(default)]
    pub features: std::collections::BTreeMap<String, String>,
    /// Image path relative to the images root → an RGBA PNG over the model's view, relative to
    /// the notes file.
    #[serde(default)]
    pub images: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteIndex {
    pub title: String,
    /// The model's class names, by index (for the upload page's predictions).
    pub class_names: Vec<String>,
    /// The classes of the dataset.
    pub classes: Vec<SiteClass>,
    /// Model weights for in-browser inference, when the site has them.
    pub model: Option<SiteModel>,
    /// Images in the dataset (thumbnails).
    pub images: usize,
    pub annotate: bool,
    pub generator: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteClass {
    pub class: usize,
    pub wnid: String,
    pub name: String,
    pub core: Vec<usize>,
    pub spurious: Vec<usize>,
    /// One thumbnail for the class list.
    pub thumb: Option<String>,
    /// What is known of the class beyond the labels (e.g. a benchmark's planted cue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteModel {
    /// What the weights are (e.g. "ResNet-50").
    pub description: String,
    /// Chunk files, in order; their concatenation is an f16 safetensors file.
    pub chunks: Vec<String>,
    pub bytes: u64,
    /// SHA-256 of the whole file, hex (also the browser cache key).
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassPage {
    pub class: usize,
    pub wnid: String,
    pub name: String,
    pub features: Vec<FeaturePage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturePage {
    pub feature: usize,
    pub label: Label,
    /// 1-based rank among the class's features.
    pub rank: usize,
    /// The feature-attack image (amplified feature), when the site has one.
    pub attack: Option<String>,
    pub images: Vec<SiteImage>,
    /// What ground truth says of the feature (e.g. where its heatmap mass lies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteImage {
    pub image: String,
    pub activation: f32,
    /// The 224×224 view the model saw (JPEG).
    pub thumb: String,
    /// Its soft mask for this feature (8-bit PNG).
    pub mask: String,
    /// Ground-truth regions over the view (RGBA PNG), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotateIndex {
    pub pairs: Vec<AnnotatePair>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotatePair {
    pub class: usize,
    pub wnid: String,
    pub name: String,
    pub feature: usize,
    pub rank: usize,
    /// The label the dataset already has, if any.
    pub label: Option<Label>,
    pub images: Vec<AnnotateImage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotateImage {
    pub view: String,
    /// The soft mask (the page draws the heatmap), or a rendered heatmap.
    pub mask: Option<String>,
    pub heatmap: Option<String>,
    pub attack: Option<String>,
}
