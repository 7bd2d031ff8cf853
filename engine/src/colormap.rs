//! Heatmap overlays as the reference draws them: a JET colour map (high = red) added to the
//! image, then divided by the global maximum (method §c.5).

use image::RgbImage;

/// OpenCV's `COLORMAP_JET` at gray level `v`, as RGB (within one level of OpenCV's table).
pub fn jet(v: u8) -> [u8; 3] {
    let x = f32::from(v) / 255.0;
    let ramp = |c: f32| ((1.5 - (4.0 * x - c).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [ramp(3.0), ramp(2.0), ramp(1.0)]
}

/// The reference heatmap of a soft mask over an image (both 224×224): OpenCV colours
/// `uint8(255·(1 − m))` in BGR, shown as RGB (so high activation is red), added to the
/// image, divided by the maximum over all pixels and channels.
pub fn overlay(img: &RgbImage, mask: &[f32]) -> RgbImage {
    let (w, h) = img.dimensions();
    assert_eq!(mask.len(), (w * h) as usize, "mask and image sizes differ");
    let heat: Vec<[f32; 3]> = img
        .pixels()
        .zip(mask)
        .map(|(p, m)| {
            // uint8() truncates; the BGR triple read as RGB swaps red and blue.
            let [r, g, b] = jet((255.0 * (1.0 - m.clamp(0.0, 1.0))) as u8);
            let rgb = [b, g, r];
            std::array::from_fn(|c| f32::from(rgb[c]) / 255.0 + f32::from(p[c]) / 255.0)
        })
        .collect();
    let max = heat.iter().flatten().copied().fold(f32::MIN_POSITIVE, f32::max);
    let data = heat.iter().flatten().map(|v| (v / max * 255.0).round() as u8).collect();
    RgbImage::from_raw(w, h, data).expect("sized from the image")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_endpoints_match_opencv() {
        assert_eq!(jet(0), [0, 0, 128]);
        assert_eq!(jet(255), [128, 0, 0]);
        assert_eq!(jet(32), [0, 0, 255]);
    }

    #[test]
    fn high_activation_is_red() {
        let img = RgbImage::new(2, 1);
        let o = overlay(&img, &[1.0, 0.0]);
        assert!(o.get_pixel(0, 0)[0] > 200 && o.get_pixel(0, 0)[2] < 50, "{:?}", o.get_pixel(0, 0));
        assert!(o.get_pixel(1, 0)[2] > 100 && o.get_pixel(1, 0)[0] == 0, "{:?}", o.get_pixel(1, 0));
    }
}
