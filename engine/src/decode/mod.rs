//! Decoding images into 8-bit RGB, within size limits, with EXIF orientation applied.
//!
//! The reference loader is PIL's `Image.open(...).convert('RGB')`. Natively, JPEGs are decoded
//! by libjpeg-turbo (as in PIL, so the pixels are identical, CMYK conventions included); PNG
//! and WebP by the `image` crate, which decodes them exactly. In the browser JPEGs go through
//! the `image` crate too, whose decoder differs from libjpeg-turbo by a few gray levels.
//!
//! Differences from PIL, on purpose: EXIF orientation is applied (PIL ignores it, so phone
//! photos come out sideways), and 16-bit images are scaled to 8 bits (PIL clips 16-bit
//! grayscale to 255).

#[cfg(not(target_arch = "wasm32"))]
mod jpeg;

use std::io::Cursor;
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::error::Error;

/// Largest accepted width or height, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Largest accepted pixel count (a 8192×8192 image).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;
/// Smallest accepted width or height: below this an image holds nothing to classify.
pub const MIN_SIDE: u32 = 16;
/// Largest accepted image file.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Largest allocation a decoder may make.
const MAX_DECODE_ALLOC: u64 = 1024 * 1024 * 1024;
/// Most scans a progressive JPEG may have (real ones have about 10): each scan makes the
/// decoder pass over the whole image again, so a small file of thousands of tiny scans would
/// cost minutes of decoding.
pub const MAX_JPEG_SCANS: usize = 100;

/// Reads and decodes an image file.
/// Only regular files are read (a FIFO or a device is refused before it is opened for real),
/// and at most [`MAX_FILE_BYTES`] of them.
pub fn load_image(path: &Path) -> Result<RgbImage, Error> {
    let bytes = crate::fsutil::read_file(path, MAX_FILE_BYTES)?;
    decode_image(&crate::fsutil::shown(path), &bytes)
}

/// Decodes JPEG, PNG or WebP bytes; `name` is used in messages.
pub fn decode_image(name: &str, bytes: &[u8]) -> Result<RgbImage, Error> {
    let fail = |m: String| Error::image(name, m);
    if bytes.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP));
    let Some(format) = format else {
        return Err(fail("not a JPEG, PNG or WebP image".into()));
    };
    let format_name = format!("{format:?}").to_uppercase();

    // Check the size from the header before decoding anything.
    let size = imagesize::blob_size(bytes).map_err(|e| fail(format!("cannot read the {format_name} header ({e})")))?;
    let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    check_size(clamp(size.width), clamp(size.height)).map_err(fail)?;
    if format == ImageFormat::Jpeg {
        let scans = jpeg_scans(bytes);
        if scans > MAX_JPEG_SCANS {
            return Err(fail(format!("the JPEG has {scans} scans, over the limit of {MAX_JPEG_SCANS}")));
        }
        #[cfg(not(target_arch = "wasm32"))]
        return jpeg::decode(bytes).map_err(fail);
    }

    let bytes = if format == ImageFormat::Png { png_pixels_only(bytes) } else { std::borrow::Cow::Borrowed(bytes) };
    let mut reader = ImageReader::with_format(Cursor::new(&bytes[..]), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| fail(format!("cannot decode {format_name} ({e})")))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder)
        .map_err(|e| fail(format!("cannot decode {format_name}: the file is corrupt or truncated ({e})")))?;
    Ok(apply_orientation(img.to_rgb8(), orientation))
}

/// A PNG with only the chunks that make its pixels (`IHDR`, `PLTE`, `tRNS`, `IDAT`, `IEND`) and
/// its EXIF orientation (`eXIf`). Compressed metadata (`iCCP` profiles, `zTXt` and `iTXt` text)
/// is dropped unread: a 1 MB file can hold a 1 GiB profile, which decoders inflate in full.
/// A file whose chunks do not parse is returned as it is, for the decoder to report.
fn png_pixels_only(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const KEEP: [&[u8; 4]; 6] = [b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"eXIf"];
    let mut out = bytes[..8.min(bytes.len())].to_vec();
    let mut at = 8;
    let mut dropped = false;
    while at + 12 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(end) = at.checked_add(12 + len).filter(|&e| e <= bytes.len()) else { break };
        let kind = &bytes[at + 4..at + 8];
        if KEEP.iter().any(|k| k[..] == *kind) {
            out.extend_from_slice(&bytes[at..end]);
        } else {
            dropped = true;
        }
        at = end;
        if kind == b"IEND" {
            break;
        }
    }
    if dropped && at <= bytes.len() { std::borrow::Cow::Owned(out) } else { std::borrow::Cow::Borrowed(bytes) }
}

/// Number of start-of-scan markers (`FF DA`) in a JPEG. Entropy-coded data escapes every
/// `FF` byte as `FF 00`, so the pair only ever appears as a real marker.
fn jpeg_scans(bytes: &[u8]) -> usize {
    bytes.windows(2).filter(|w| w == &[0xff, 0xda]).count()
}

/// Turns a decoded image upright as its EXIF orientation says.
fn apply_orientation(img: RgbImage, orientation: Orientation) -> RgbImage {
    if orientation == Orientation::NoTransforms {
        return img;
    }
    let mut dynamic = DynamicImage::ImageRgb8(img);
    dynamic.apply_orientation(orientation);
    dynamic.into_rgb8()
}

/// Rejects images too small to hold anything or too large to process safely.
pub fn check_size(w: u32, h: u32) -> Result<(), String> {
    if w.min(h) < MIN_SIDE {
        return Err(format!("the image is {w}×{h} pixels; images need at least {MIN_SIDE} pixels on each side"));
    }
    if w.max(h) > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!(
            "the image is {w}×{h} pixels, over the limit of {MAX_SIDE} pixels per side and {} megapixels",
            MAX_PIXELS >> 20
        ));
    }
    // The resize to a 256-pixel shorter side must stay bounded too.
    if u64::from(w.max(h)) * 256 / u64::from(w.min(h)) > u64::from(MAX_SIDE) {
        return Err(format!("the image is {w}×{h} pixels; aspect ratios beyond 64:1 are not supported"));
    }
    Ok(())
}
