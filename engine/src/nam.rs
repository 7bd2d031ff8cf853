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

/// The `side × side` map whose [`upsample_bilinear`] to `size × size` is closest to `mask` in
/// the least-squares sense: the inverse of upsampling, exact (up to rounding) for any mask that
/// was made by upsampling a `side × side` map — as every mask of the method is, from its 7×7
/// `layer4` map. `mask` is `[size, size]` row-major; the result `[side, side]`.
pub fn fit_map(mask: &[f32], size: usize, side: usize) -> Vec<f32> {
    // U: `size × side`, column k the upsampling of the k-th unit vector (separable in 2-D).
    let mut u = vec![0.0f64; size * side];
    for k in 0..side {
        let mut e = vec![0.0f32; side];
        e[k] = 1.0;
        for (o, v) in upsample_bilinear(&e, 1, side, 1, size).into_iter().enumerate() {
            u[o * side + k] = f64::from(v);
        }
    }
    // A = (UᵀU)⁻¹ Uᵀ, `side × size`, by Gauss–Jordan on the small normal matrix.
    let mut normal = vec![0.0f64; side * 2 * side];
    for i in 0..side {
        for j in 0..side {
            normal[i * 2 * side + j] = (0..size).map(|o| u[o * side + i] * u[o * side + j]).sum();
        }
        normal[i * 2 * side + side + i] = 1.0;
    }
    for col in 0..side {
        let pivot = normal[col * 2 * side + col];
        for j in 0..2 * side {
            normal[col * 2 * side + j] /= pivot;
        }
        for row in (0..side).filter(|&r| r != col) {
            let f = normal[row * 2 * side + col];
            for j in 0..2 * side {
                normal[row * 2 * side + j] -= f * normal[col * 2 * side + j];
            }
        }
    }
    let a: Vec<f64> = (0..side)
        .flat_map(|i| {
            let (normal, u) = (&normal, &u);
            (0..size).map(move |o| (0..side).map(|k| normal[i * 2 * side + side + k] * u[o * side + k]).sum::<f64>())
        })
        .collect();
    // M = A · mask · Aᵀ.
    let rows: Vec<f64> = (0..side)
        .flat_map(|i| {
            let a = &a;
            (0..size).map(move |x| (0..size).map(|y| a[i * size + y] * f64::from(mask[y * size + x])).sum::<f64>())
        })
        .collect();
    (0..side)
        .flat_map(|i| {
            let (a, rows) = (&a, &rows);
            (0..side).map(move |j| (0..size).map(|x| rows[i * size + x] * a[j * size + x]).sum::<f64>() as f32)
        })
        .collect()
}

/// A mask in [0, 1] as 8-bit gray levels, `round(255 · m)`.
pub fn to_gray(mask: &[f32]) -> Vec<u8> {
    mask.iter().map(|m| (m.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_inverts_upsampling() {
        let map: Vec<f32> = (0..49).map(|i| ((i * 37 % 49) as f32 / 48.0).powi(2)).collect();
        let mask = upsample_bilinear(&map, 7, 7, 224, 224);
        let fitted = fit_map(&mask, 224, 7);
        let worst = fitted.iter().zip(&map).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "the fitted map is off by {worst}");
        // From 8-bit gray levels, within a fraction of a level.
        let gray: Vec<f32> = to_gray(&mask).iter().map(|&v| f32::from(v) / 255.0).collect();
        let worst = fit_map(&gray, 224, 7).iter().zip(&map).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 0.5 / 255.0, "from gray levels the fitted map is off by {}", worst * 255.0);
    }

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
