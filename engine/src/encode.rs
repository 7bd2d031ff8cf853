//! Images to file bytes: PNG (lossless) and JPEG at a stated quality. Every PNG and JPEG the
//! toolkit writes is encoded here (the site's WebP thumbnails use libwebp, in the CLI).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat};

use crate::error::{Error, Result};

/// `img` as PNG (the `image` crate's default compression and filter).
pub fn png(img: &DynamicImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| Error::Invalid(format!("cannot encode a PNG: {e}")))?;
    Ok(bytes)
}

/// `img` as baseline JPEG at `quality` (1–100; the `image` crate's default is 75).
pub fn jpeg(img: &DynamicImage, quality: u8) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    img.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, quality))
        .map_err(|e| Error::Invalid(format!("cannot encode a JPEG: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_jpeg_read_back() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([x as u8 * 16, y as u8 * 16, 0])
        }));
        assert_eq!(image::load_from_memory(&png(&img).unwrap()).unwrap(), img);
        let j = image::load_from_memory(&jpeg(&img, 90).unwrap()).unwrap();
        assert_eq!((j.width(), j.height()), (16, 16));
    }
}
