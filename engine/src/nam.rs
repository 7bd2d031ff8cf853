//! Neural activation maps (NAMs): a feature's `layer4` map divided by its spatial maximum,
//! upsampled to the image, used as a soft mask (method §c).

/// One image's `layer4` output: `channels` maps of `h × w`, row-major `[C, h, w]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMaps {
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl FeatureMaps {
    /// Map `j` divided by its maximum: values in [0, 1]. A map whose maximum is 0 (the feature
    /// is silent on this image) gives all zeros, where the reference code divides by zero.
    pub fn normalized(&self, j: usize) -> Vec<f32> {
        let plane = self.h * self.w;
        let map = &self.data[j * plane..(j + 1) * plane];
        let max = map.iter().copied().fold(0.0f32, f32::max);
        if max > 0.0 { map.iter().map(|v| v / max).collect() } else { vec![0.0; plane] }
    }

    /// The soft mask of a set of features at `size × size`: the pixelwise maximum of their
    /// upsampled normalized maps. `[size, size]` row-major, values in [0, 1].
    pub fn soft_mask(&self, features: &[usize], size: usize) -> Vec<f32> {
        let mut mask = vec![0.0f32; size * size];
        for &j in features {
            let up = upsample_bilinear(&self.normalized(j), self.h, self.w, size, size);
            for (m, u) in mask.iter_mut().zip(up) {
                *m = m.max(u);
            }
        }
        mask
    }
}

/// Bilinear resize with half-pixel centres and clamped edges: OpenCV's `INTER_LINEAR` and
/// PyTorch's `interpolate(mode='bilinear', align_corners=False)`, without antialiasing.
pub fn upsample_bilinear(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    // For each output coordinate: the two source indices and the weight of the second.
    let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|o| {
                let x = (((o as f64 + 0.5) * scale - 0.5) as f32).max(0.0);
                let x0 = (x.floor() as usize).min(n_in - 1);
                let x1 = (x0 + 1).min(n_in - 1);
                (x0, x1, x - x0 as f32)
            })
            .collect()
    };
    let (ys, xs) = (taps(h, out_h), taps(w, out_w));
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, fy) in &ys {
        for &(x0, x1, fx) in &xs {
            let top = src[y0 * w + x0] * (1.0 - fx) + src[y0 * w + x1] * fx;
            let bottom = src[y1 * w + x0] * (1.0 - fx) + src[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// A mask in [0, 1] as 8-bit gray levels, `round(255 · m)`.
pub fn to_gray(mask: &[f32]) -> Vec<u8> {
    mask.iter().map(|m| (m.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_feature_gives_zero_mask() {
        let maps = FeatureMaps { channels: 2, h: 2, w: 2, data: vec![0., 0., 0., 0., 1., 2., 3., 4.] };
        assert_eq!(maps.normalized(0), vec![0.0; 4]);
        assert_eq!(maps.normalized(1), vec![0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn upsampling_matches_half_pixel_bilinear() {
        // 2 → 4: output centres at source coordinates -0.25, 0.25, 0.75, 1.25.
        let up = upsample_bilinear(&[0.0, 1.0], 1, 2, 1, 4);
        assert_eq!(up, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn union_is_pixelwise_max() {
        let maps = FeatureMaps { channels: 2, h: 1, w: 2, data: vec![1., 0., 0., 1.] };
        assert_eq!(maps.soft_mask(&[0, 1], 2), vec![1.0, 1.0, 1.0, 1.0]);
        assert_eq!(to_gray(&maps.soft_mask(&[0], 2)), vec![255, 0, 255, 0]);
    }
}
