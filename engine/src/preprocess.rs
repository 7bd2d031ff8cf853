//! The reference preprocessing, bit for bit: torchvision's `Resize(256)` (Pillow's bilinear
//! resize with antialias, see [`crate::resample`]) and `CenterCrop(224)` on an RGB image, then `ToTensor`
//! (`[3, H, W]` floats in [0, 1]); other sizes for models that ask for them ([`View`]). Normalization happens inside the model (see
//! [`crate::model::ResNet::forward`]), as in the robustness library's wrapper.

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The square view a model sees: `Resize(resize)` (shorter side) then `CenterCrop(crop)`.
/// ImageNet models: 256 and 224. Stored with the weights, so each model gets its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub resize: u32,
    pub crop: u32,
}

impl View {
    pub const IMAGENET: View = View { resize: 256, crop: 224 };

    /// The view of an RGB image (`crop × crop`).
    pub fn apply(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let (nw, nh) = resized_size(w, h, self.resize);
        let resized = resize_u8(img.as_raw(), w, h, 3, nw, nh);
        let cropped = crop_u8(&resized, nw, 3, crop_origin(nw, nh, self.crop), self.crop);
        RgbImage::from_raw(self.crop, self.crop, cropped).expect("crop has crop×crop pixels")
    }

    /// The same transform on a single-channel image. The Salient ImageNet evaluation applies
    /// it to masks that are already 224×224, which zooms them by 8/7 about the centre; this
    /// reproduces that quirk when asked to.
    pub fn apply_gray(&self, img: &GrayImage) -> GrayImage {
        let (w, h) = img.dimensions();
        let (nw, nh) = resized_size(w, h, self.resize);
        let resized = resize_u8(img.as_raw(), w, h, 1, nw, nh);
        let cropped = crop_u8(&resized, nw, 1, crop_origin(nw, nh, self.crop), self.crop);
        GrayImage::from_raw(self.crop, self.crop, cropped).expect("crop has crop×crop pixels")
    }

    /// Side of the view, in pixels.
    pub fn side(&self) -> usize {
        self.crop as usize
    }

    /// `resize,crop`, as stored in weights' metadata.
    pub fn to_text(&self) -> String {
        format!("{},{}", self.resize, self.crop)
    }

    /// The largest crop side a stored view may ask for (memory grows with its square: a
    /// ResNet-50 at 512×512 needs 5× the activations of 224×224).
    pub const MAX_CROP: u32 = 512;
    /// The largest resize side a stored view may ask for.
    pub const MAX_RESIZE: u32 = 1024;
    /// The limits of [`View::from_text`], in words.
    pub const LIMITS: &str = "16 ≤ crop ≤ resize, crop ≤ 512, resize ≤ 1024";

    /// Parses `resize,crop` (weights' metadata, a dataset's manifest): `None` unless
    /// 16 ≤ crop ≤ resize, crop ≤ [`Self::MAX_CROP`] and resize ≤ [`Self::MAX_RESIZE`].
    pub fn from_text(text: &str) -> Option<View> {
        let (r, c) = text.split_once(',')?;
        let view = View { resize: r.trim().parse().ok()?, crop: c.trim().parse().ok()? };
        (view.crop >= 16 && view.crop <= view.resize && view.crop <= Self::MAX_CROP && view.resize <= Self::MAX_RESIZE)
            .then_some(view)
    }
}

/// Per-channel input normalization `(x − mean) / std`, applied by the model after clamping to
/// [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// ImageNet's, which the robust checkpoint's normalizer holds.
    pub const IMAGENET: Normalization = Normalization { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

    /// From stored vectors (a checkpoint's normalizer buffers); `source` names the file.
    pub fn from_slices(source: &str, mean: &[f32], std: &[f32]) -> Result<Self, Error> {
        let three = |v: &[f32]| -> Option<[f32; 3]> { v.try_into().ok() };
        match (three(mean), three(std)) {
            (Some(mean), Some(std))
                if std.iter().all(|s| *s > 0.0 && s.is_finite()) && mean.iter().all(|m| m.is_finite()) =>
            {
                Ok(Normalization { mean, std })
            }
            _ => Err(Error::checkpoint(
                source,
                format!(
                    "the input normalizer must hold 3 means and 3 positive stds, found {:?} and {:?}{}",
                    &mean[..mean.len().min(6)],
                    &std[..std.len().min(6)],
                    if mean.len().max(std.len()) > 6 { " (first 6 shown)" } else { "" }
                ),
            )),
        }
    }
}

/// Output size of torchvision's `Resize(size)`: the shorter side becomes `size`, the longer
/// `int(size · long / short)`.
pub fn resized_size(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    if w <= h { (size, new_long) } else { (new_long, size) }
}

/// Top-left corner of torchvision's `CenterCrop(size)`: `int(round((H − size) / 2))` with
/// Python's round-half-to-even.
pub fn crop_origin(w: u32, h: u32, size: u32) -> (u32, u32) {
    let off = |d: u32| ((f64::from(d) - f64::from(size)) / 2.0).round_ties_even().max(0.0) as u32;
    (off(w), off(h))
}

/// Pillow's bilinear resize (antialiased, triangle filter), bit for bit, of an 8-bit image with
/// `channels` interleaved channels.
fn resize_u8(buf: &[u8], w: u32, h: u32, channels: usize, nw: u32, nh: u32) -> Vec<u8> {
    crate::resample::resize_bilinear(buf, w as usize, h as usize, channels, nw as usize, nh as usize)
}

fn crop_u8(buf: &[u8], w: u32, channels: usize, (x, y): (u32, u32), size: u32) -> Vec<u8> {
    let row = w as usize * channels;
    let mut out = Vec::with_capacity(size as usize * size as usize * channels);
    for r in y..y + size {
        let start = r as usize * row + x as usize * channels;
        out.extend_from_slice(&buf[start..start + size as usize * channels]);
    }
    out
}

/// The ImageNet view of an image: `Resize(256)` then `CenterCrop(224)`.
pub fn model_view(img: &RgbImage) -> RgbImage {
    View::IMAGENET.apply(img)
}

/// `ToTensor`: `[3, H, W]` floats in [0, 1], appended to `out`.
pub fn push_chw(img: &RgbImage, out: &mut Vec<f32>) {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let start = out.len();
    out.resize(start + 3 * plane, 0.0);
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[start + c * plane + i] = f32::from(p[c]) / 255.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_matches_torchvision_sizes() {
        assert_eq!(resized_size(500, 375, 256), (341, 256));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        assert_eq!(resized_size(1, 1, 256), (256, 256));
        assert_eq!(resized_size(640, 480, 256), (341, 256));
    }

    #[test]
    fn crop_rounds_half_to_even() {
        // (341 − 224) / 2 = 58.5 → 58; (257 − 224) / 2 = 16.5 → 16; (259 − 224)/2 = 17.5 → 18
        assert_eq!(crop_origin(341, 256, 224), (58, 16));
        assert_eq!(crop_origin(257, 259, 224), (16, 18));
    }

    #[test]
    fn views_round_trip_as_text() {
        assert_eq!(View::from_text("256,224"), Some(View::IMAGENET));
        assert_eq!(View::from_text(&View { resize: 128, crop: 112 }.to_text()), Some(View { resize: 128, crop: 112 }));
        assert_eq!(View::from_text("100,200"), None);
        assert_eq!(View::from_text("x"), None);
        assert_eq!(View::from_text("4096,4096"), None);
        assert_eq!(View::from_text("1024,512"), Some(View { resize: 1024, crop: 512 }));
    }

    #[test]
    fn model_view_is_224_and_constant_images_stay_constant() {
        let img = RgbImage::from_pixel(500, 375, image::Rgb([10, 128, 250]));
        let v = model_view(&img);
        assert_eq!(v.dimensions(), (224, 224));
        assert!(v.pixels().all(|p| p.0 == [10, 128, 250]));
        let mut t = Vec::new();
        push_chw(&v, &mut t);
        assert_eq!(t.len(), 3 * 224 * 224);
        assert!((t[0] - 10.0 / 255.0).abs() < 1e-7 && (t[224 * 224] - 128.0 / 255.0).abs() < 1e-7);
    }
}
