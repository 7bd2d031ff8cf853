//! A Salient dataset as the noise test and the Python dataset read it: a `salient build`
//! output (its `index.jsonl`) or the paper's released Salient ImageNet (no index: labels from
//! an annotations file), grouped class → feature → images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::GrayImage;
use salient_engine::annotations::{Bounds, Label};
use salient_engine::dataset::{self, MaskRecord};
use salient_engine::{decode, fsutil};

use crate::error::{Error, Result};
use crate::manifest::{bytes_sha256, file_sha256};

/// A dataset's masks, grouped: class → features in rank order → images best first.
pub struct MaskSet {
    /// The dataset folder.
    pub root: PathBuf,
    /// The same, confining the paths its files name.
    confined: fsutil::Root,
    pub classes: BTreeMap<usize, ClassMasks>,
}

pub struct ClassMasks {
    pub wnid: String,
    pub features: Vec<FeatureMasks>,
}

pub struct FeatureMasks {
    pub feature: usize,
    pub label: Label,
    /// 1-based rank among the class's features.
    pub rank: usize,
    pub images: Vec<MaskRef>,
}

/// One mask of a feature, as the dataset lists it.
pub struct MaskRef {
    /// The image's name.
    pub name: String,
    /// The image file, relative to the images root.
    pub source: String,
    /// The mask file, relative to the dataset root.
    pub mask: String,
    /// SHA-256 of the mask file (empty for the paper's release, which lists none).
    pub sha256: String,
}

impl MaskSet {
    /// Opens `dir`: its `index.jsonl`, or — for the paper's release — its layout with the
    /// labels of `annotations`. Classes and features are checked against `bounds`.
    pub fn open(dir: &Path, annotations: Option<&Path>, bounds: Bounds) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Data(format!(
                "{}: no such folder (give a `salient build` output or the paper's release)",
                fsutil::shown(dir)
            )));
        }
        let index = dir.join(dataset::INDEX_FILE);
        let records: Vec<MaskRecord> = if index.exists() {
            dataset::parse_index(&fsutil::shown(&index), &fsutil::read_text(&index)?)?
        } else {
            let Some(ann) = annotations else {
                return Err(Error::Usage(format!(
                    "{} has no {}: for the paper's release, give its labels with --annotations",
                    dir.display(),
                    dataset::INDEX_FILE
                )));
            };
            let labels = crate::files::load_annotations(ann, bounds)?;
            dataset::release_records(dir, &labels)?
        };
        let mut classes: BTreeMap<usize, ClassMasks> = BTreeMap::new();
        for r in records {
            let c = classes.entry(r.class).or_insert_with(|| ClassMasks { wnid: r.wnid.clone(), features: Vec::new() });
            let f = match c.features.iter().position(|f| f.feature == r.feature) {
                Some(i) => &mut c.features[i],
                None => {
                    let rank = c.features.len() + 1;
                    c.features.push(FeatureMasks { feature: r.feature, label: r.label, rank, images: Vec::new() });
                    c.features.last_mut().expect("just pushed")
                }
            };
            f.images.push(MaskRef { name: r.image, source: r.source, mask: r.mask, sha256: r.sha256 });
        }
        if classes.is_empty() {
            return Err(Error::Data(format!("{}: the dataset holds no masks", dir.display())));
        }
        Ok(MaskSet { root: dir.to_path_buf(), confined: fsutil::Root::new(dir)?, classes })
    }

    /// What identifies the dataset in a run manifest: its index's SHA-256 (the paper's
    /// release has none: its place).
    pub fn fingerprint(&self) -> Result<String> {
        let index = self.root.join(dataset::INDEX_FILE);
        if index.exists() { file_sha256(&index) } else { Ok(format!("paper release at {}", self.root.display())) }
    }

    /// A mask, `side × side` gray, checked against the SHA-256 the index gives for it. Paths stay
    /// inside the dataset.
    pub fn load_mask(&self, r: &MaskRef, side: u32) -> Result<GrayImage> {
        let path = self.confined.join(&r.mask, "the dataset's index")?;
        let bytes = fsutil::read_file(&path, decode::MAX_FILE_BYTES)?;
        if !r.sha256.is_empty() && bytes_sha256(&bytes) != r.sha256 {
            return Err(Error::Data(format!(
                "{}: the mask's SHA-256 differs from the one in {}: the dataset was changed after it was built; rebuild it",
                fsutil::shown(&path),
                dataset::INDEX_FILE
            )));
        }
        let img = image::load_from_memory(&bytes)
            .map_err(|e| salient_engine::Error::image(&path, format!("cannot read the mask ({e})")))?;
        let gray = img.to_luma8();
        if gray.dimensions() != (side, side) {
            return Err(Error::Data(format!(
                "{}: the model sees {side}×{side} views, but this mask is {:?}",
                path.display(),
                gray.dimensions()
            )));
        }
        Ok(gray)
    }
}
