//! Writing result images: PNG, atomically.

use std::path::Path;

use image::DynamicImage;

use crate::error::{Error, Result};

/// Writes `img` as PNG to `path` (which must end in `.png`), never leaving a partial file.
pub fn save_png(img: &DynamicImage, path: &Path) -> Result<()> {
    if !path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        return Err(Error::Usage(format!("{}: output images are PNG (lossless); name the file *.png", path.display())));
    }
    Ok(salient_engine::fsutil::write_atomic(path, &salient_engine::encode::png(img)?)?)
}
