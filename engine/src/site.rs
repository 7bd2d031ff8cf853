//! The static site's data files, written by `salient site` and read by the web explorer, and the
//! messages between the explorer's page and its engine worker. All paths are relative to the
//! site's root, so the site works under any URL prefix.
//!
//! ```text
//! data/site.json             SiteIndex: the class list (the first page needs nothing else)
//! data/classes/<class>.json  ClassPage: a class's features, their labels with provenance, and
//!                            each image's mask as its low-resolution map (drawn in the browser)
//! data/annotate.json         AnnotateIndex: the (class, feature) pairs to judge
//! data/thumbs/<wnid>/        the 224×224 views, as small WebP thumbnails (absent in a masks-only
//!                            site: the page draws the masks over the visitor's own images)
//! data/attacks/, pairs/      feature-attack images and a discover run's renderings
//! data/model/model.safetensors.<i>   the model for the upload page, f16, in chunks
//! ```
//!
//! Nothing here needs the model: the browsing pages are built without it (no `model` feature).

use serde::{Deserialize, Serialize};

use crate::annotations::{Label, Votes, WorkerAnswer};
use crate::nam;

pub const INDEX: &str = "data/site.json";

/// The version of the files' layout: the page refuses a site of another.
pub const SCHEMA: u32 = 2;

pub fn class_page(class: usize) -> String {
    format!("data/classes/{class}.json")
}

pub const ANNOTATE: &str = "data/annotate.json";

/// An image's thumbnail in a thumbnail site: the view the model saw, scaled down (WebP).
pub fn thumb_path(wnid: &str, image: &str) -> String {
    format!("data/thumbs/{wnid}/{image}.webp")
}

/// What `salient site --notes` adds to a site: text about classes and features, and ground-truth
/// overlays of images (the synthetic benchmark writes one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteNotes {
    /// Version of the notes' layout (the pipeline's `SCHEMA`; 1 when absent).
    #[serde(default = "notes_schema")]
    pub schema: u32,
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

fn notes_schema() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteIndex {
    pub schema: u32,
    pub title: String,
    /// The classes of the dataset.
    pub classes: Vec<SiteClass>,
    /// Model weights for in-browser inference, when the site has them.
    pub model: Option<SiteModel>,
    /// Distinct images in the dataset, and masks (one per image and feature).
    pub images: usize,
    pub masks: usize,
    /// Where the labels come from (shown beside every label).
    pub labels: LabelSource,
    /// Whether the site ships the images as thumbnails. Without them (a masks-only site, for
    /// data whose images may not be redistributed) visitors point the page at their own copy.
    pub thumbs: bool,
    /// The view the masks were made on (`resize/crop`, e.g. `256/224`): how a visitor's own
    /// image is cropped under its mask.
    pub view: String,
    pub annotate: bool,
    pub generator: String,
}

/// The origin of a site's labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSource {
    /// `mturk` (the paper's crowd study, five workers a pair), `csv` (a Salient CSV: a person
    /// using the explorer, or `salient labels`) or `truth` (a benchmark's ground truth).
    pub kind: String,
    /// The file the labels were read from (its name only).
    pub file: String,
    /// One sentence for the page.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteClass {
    pub class: usize,
    pub wnid: String,
    pub name: String,
    pub core: Vec<usize>,
    pub spurious: Vec<usize>,
    /// One thumbnail for the class list (thumbnail sites only).
    pub thumb: Option<String>,
    /// What is known of the class beyond the labels (e.g. a benchmark's planted cue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteModel {
    /// What the weights are (e.g. "ResNet-50").
    pub description: String,
    /// How many classes the model tells apart (10 for the synthetic benchmark's): the upload
    /// page says so, since a photo of anything else still gets one of them.
    pub classes: usize,
    /// Chunk files, in order; their concatenation is an f16 safetensors file.
    pub chunks: Vec<SiteChunk>,
    pub bytes: u64,
    /// SHA-256 of the whole file, hex (also the browser cache's version).
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteChunk {
    pub path: String,
    pub bytes: u64,
    /// SHA-256 of the chunk, hex: checked in the browser before the chunk is used or cached.
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
    /// The crowd's answers behind the label, when the labels are the paper's MTurk study.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<Votes>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<WorkerAnswer>,
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
    /// r_j(x), when known (the paper's release does not list it).
    pub activation: Option<f32>,
    /// The image file relative to an ImageNet-layout root, when it is not ImageNet's
    /// `<wnid>/<image>.JPEG` ([`SiteImage::source`]): how a masks-only site finds it in the
    /// visitor's copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The soft mask as its low-resolution map ([`MaskMap`], base64).
    pub map: String,
    /// Ground-truth regions over the view (RGBA PNG), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
}

impl SiteImage {
    /// The image file relative to an ImageNet-layout root.
    pub fn source(&self, wnid: &str) -> String {
        self.source.clone().unwrap_or_else(|| format!("{wnid}/{}.JPEG", self.image))
    }
}

/// A soft mask stored as the `side × side` map it is the bilinear upsampling of (7×7 for the
/// method's `layer4` maps): 49 bytes instead of a 224×224 image. Encoded as base64 of the map's
/// values in 8-bit levels, row-major; the side is the square root of the length.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskMap {
    pub side: usize,
    /// `[side, side]`, values 0..=255.
    pub levels: Vec<u8>,
}

impl MaskMap {
    /// The map of a `size × size` mask (values in [0, 1]) at `side × side`.
    pub fn fit(mask: &[f32], size: usize, side: usize) -> MaskMap {
        MaskMap { side, levels: nam::to_gray(&nam::fit_map(mask, size, side)) }
    }

    /// The mask drawn from the map at `size × size`, values in [0, 1].
    pub fn mask(&self, size: usize) -> Vec<f32> {
        let map: Vec<f32> = self.levels.iter().map(|&v| f32::from(v) / 255.0).collect();
        nam::upsample_bilinear(&map, self.side, self.side, size, size)
    }

    pub fn encode(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.levels)
    }

    pub fn decode(text: &str) -> Result<MaskMap, String> {
        use base64::Engine as _;
        let levels = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("a mask map is not base64 ({e})"))?;
        let side = (levels.len() as f64).sqrt().round() as usize;
        if side == 0 || side * side != levels.len() || side > 256 {
            return Err(format!("a mask map of {} values is not a square of at most 256×256", levels.len()));
        }
        Ok(MaskMap { side, levels })
    }
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
    /// The view (a thumbnail or a discover run's rendering), when the site has images.
    pub view: Option<String>,
    /// The soft mask as a map (the page draws the heatmap), or a rendered heatmap.
    pub map: Option<String>,
    pub heatmap: Option<String>,
    pub attack: Option<String>,
}

/// What the upload page's worker sends back for one image: the prediction, the features
/// behind it and the masks, computed by the engine in the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub backend: String,
    /// (class, name, probability), best first.
    pub top5: Vec<(usize, String, f32)>,
    /// The five features behind the top class: (feature, r·w).
    pub features: Vec<(usize, f32)>,
    /// The upsampled soft masks at the view's size, 8-bit: the union of the top features',
    /// and each top feature's alone (in `features` order).
    pub top_mask: Vec<u8>,
    pub feature_masks: Vec<Vec<u8>>,
    /// Masks of the given core and spurious features (those the site labels for the
    /// predicted class), when there are any.
    pub core_mask: Option<Vec<u8>>,
    pub spurious_mask: Option<Vec<u8>>,
    /// The view the model saw: `side × side` RGB, row-major.
    pub view: Vec<u8>,
    pub side: usize,
    pub ms: f64,
}

/// The site's labels as the worker needs them: (class, core features, spurious features).
pub type ClassLabels = Vec<(usize, Vec<usize>, Vec<usize>)>;

/// Messages from the page to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Load the site's model; `backend` is `auto`, `cpu` or `webgpu`.
    Load { model: SiteModel, backend: String },
    /// Analyse an image file (its bytes travel beside the message, unencoded), with the site's
    /// labels: (class, core features, spurious features).
    Analyse { name: String, labels: ClassLabels },
}

/// Messages from the worker to the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    Ready,
    Progress { done: u64, total: u64 },
    Loaded { backend: String, from_cache: bool, load_ms: f64, description: String },
    Failed(String),
    Analysed(Analysis),
    AnalysisFailed(String),
}
