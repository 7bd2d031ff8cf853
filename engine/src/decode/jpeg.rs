//! JPEG through libjpeg-turbo (the `mozjpeg` crate), configured as PIL configures it: accurate
//! integer IDCT, fancy upsampling, and Adobe-inverted CMYK converted by PIL's own formula.
//!
//! libjpeg reports fatal errors by unwinding (caught here, without a panic message) and only
//! warns about a truncated file; like PIL, a file whose last scan never ends is an error.

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::RgbImage;
use image::metadata::Orientation;
use mozjpeg::{ColorSpace, Decompress, Marker};

use super::{apply_orientation, check_size};

pub fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    if !ends_its_scans(bytes) {
        return Err("the JPEG is truncated: its data stops before the end-of-image marker".into());
    }
    match catch_unwind(AssertUnwindSafe(|| decode_unchecked(bytes))) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(|m| m.trim_start_matches("libjpeg fatal error: ").to_owned())
                .unwrap_or_else(|| "libjpeg failed".into());
            Err(format!("cannot decode JPEG: the file is corrupt ({message})"))
        }
    }
}

fn decode_unchecked(bytes: &[u8]) -> Result<RgbImage, String> {
    let d = Decompress::with_markers(&[Marker::APP(1)])
        .from_mem(bytes)
        .map_err(|e| format!("cannot read the JPEG header ({e})"))?;
    let (w, h) = (d.width() as u32, d.height() as u32);
    check_size(w, h)?;
    let orientation = d
        .markers()
        .filter(|m| m.marker == Marker::APP(1))
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0").and_then(Orientation::from_exif_chunk))
        .unwrap_or(Orientation::NoTransforms);
    let cmyk = d.components().len() == 4;
    let space = if cmyk { ColorSpace::JCS_CMYK } else { ColorSpace::JCS_RGB };
    let mut started = d.to_colorspace(space).map_err(|e| format!("cannot decode JPEG ({e})"))?;
    let raw: Vec<u8> = started.read_scanlines::<u8>().map_err(|e| format!("cannot decode JPEG ({e})"))?;
    started.finish().map_err(|e| format!("cannot decode JPEG ({e})"))?;
    let rgb = if cmyk { raw.chunks_exact(4).flat_map(pil_cmyk_to_rgb).collect() } else { raw };
    let img = RgbImage::from_raw(w, h, rgb).ok_or("libjpeg returned fewer pixels than the header declares")?;
    Ok(apply_orientation(img, orientation))
}

/// PIL: CMYK JPEGs are stored inverted ("assume Adobe conventions"), then
/// `out = nk − nk·c/255` with `nk = 255 − k`, rounded as PIL's `MULDIV255`.
fn pil_cmyk_to_rgb(px: &[u8]) -> [u8; 3] {
    let [c, m, y, k] = [255 - px[0], 255 - px[1], 255 - px[2], 255 - px[3]].map(u32::from);
    let nk = 255 - k;
    let muldiv255 = |a: u32| {
        let t = a * nk + 128;
        ((t >> 8) + t) >> 8
    };
    [c, m, y].map(|v| (nk - muldiv255(v)) as u8)
}

/// Whether an end-of-image marker follows the first start-of-scan. Inside entropy-coded data a
/// 0xFF byte is always followed by 0x00 or a restart marker, so `FF D9` there is the real end.
fn ends_its_scans(bytes: &[u8]) -> bool {
    let mut pos = 2; // after SOI
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let marker = bytes[pos + 1];
        match marker {
            0xFF => pos += 1,
            0xD0..=0xD9 | 0x01 => pos += 2,
            _ => {
                let len = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
                let next = pos + 2 + len;
                if marker == 0xDA {
                    return bytes.get(next..).is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]));
                }
                pos = next;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_is_pils() {
        // Stored (inverted) white, black and a mid gray.
        assert_eq!(pil_cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(pil_cmyk_to_rgb(&[255, 255, 255, 0]), [0, 0, 0]);
        assert_eq!(pil_cmyk_to_rgb(&[0, 255, 255, 255]), [0, 255, 255]);
    }

    #[test]
    fn truncation_is_detected() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34];
        assert!(!ends_its_scans(&jpeg));
        jpeg.extend([0xFF, 0x00, 0x56, 0xFF, 0xD9]);
        assert!(ends_its_scans(&jpeg));
    }
}
