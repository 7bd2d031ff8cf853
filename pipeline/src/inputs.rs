//! Turning command-line paths into image files, and images into model views.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rayon::prelude::*;
use salient_engine::preprocess::View;
use salient_engine::{decode, fsutil};

use crate::error::{Error, Result};

/// Extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Files as given; directories expanded recursively to their images, sorted. Each folder is
/// read once however many links lead to it, so a link to `.` or `..` neither loops nor
/// counts an image twice.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut out, &mut seen)?;
            out[before..].sort();
            if out.len() == before {
                return Err(Error::Data(format!("{}: the folder holds no JPEG, PNG or WebP images", fsutil::shown(p))));
            }
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The images under `dir`, skipping folders already in `seen` (canonical paths).
fn walk(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut BTreeSet<PathBuf>) -> Result<()> {
    let real = std::fs::canonicalize(dir).map_err(|e| salient_engine::Error::read(dir, e))?;
    if !seen.insert(real) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| salient_engine::Error::read(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| salient_engine::Error::read(dir, e))?.path();
        if path.is_dir() {
            walk(&path, out, seen)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Decodes images in parallel into a model's views; each failure keeps its message.
pub fn load_views(paths: &[PathBuf], view: View) -> Vec<Result<RgbImage, salient_engine::Error>> {
    paths.par_iter().map(|p| decode::load_image(p).map(|img| view.apply(&img))).collect()
}
