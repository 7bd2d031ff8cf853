//! Pillow's resampling of 8-bit images, bit for bit (`Image.resize(size, BILINEAR)`, which
//! torchvision's `Resize` calls on PIL images): a separable convolution whose filter support
//! grows with the shrink factor (antialiasing), with Pillow's fixed-point arithmetic.
//!
//! Per output row or column, Pillow computes the filter weights in `f64`, normalizes them to
//! sum to 1, and rounds each to a signed 22-bit fixed-point integer (`PRECISION_BITS` =
//! 32 − 8 − 2, rounding half away from zero). A pixel is then `Σ value·weight` in `i32`, plus
//! half a unit, shifted right by 22 and clamped to 0..=255. The horizontal pass runs first,
//! on the rows the vertical pass needs, and its result is rounded to 8 bits before the
//! vertical pass (or the other way round, see [`resize_bilinear`]). A pass is skipped when its
//! side keeps its size.

/// Bits of the fixed-point weights.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's bilinear (triangle) filter, support 1.
fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// The weights of one pass: for each output position, the first input index and its weights.
struct Coefficients {
    /// `[out]`: first input index used.
    first: Vec<usize>,
    /// `[out]`: number of inputs used.
    count: Vec<usize>,
    /// `[out, taps]`: fixed-point weights, zero past `count`.
    weights: Vec<i32>,
    taps: usize,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for `in_size → out_size` over the
/// whole input (`box` = 0..in_size).
fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let support_of_filter = 1.0;
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = support_of_filter * filter_scale;
    let taps = support.ceil() as usize * 2 + 1;
    let mut c = Coefficients {
        first: Vec::with_capacity(out_size),
        count: Vec::with_capacity(out_size),
        weights: vec![0; out_size * taps],
        taps,
    };
    let mut k = vec![0f64; taps];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's `(int)` truncates toward zero; negative starts are then clamped to 0.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(taps);
        let (mut sum, ss) = (0.0, 1.0 / filter_scale);
        for (x, w) in k.iter_mut().enumerate().take(n) {
            *w = bilinear(((x + xmin) as f64 - center + 0.5) * ss);
            sum += *w;
        }
        let row = &mut c.weights[xx * taps..(xx + 1) * taps];
        for (x, w) in k.iter().enumerate().take(n) {
            let w = if sum != 0.0 { w / sum } else { *w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            row[x] = if w < 0.0 { (fixed - 0.5) as i32 } else { (fixed + 0.5) as i32 };
        }
        c.first.push(xmin);
        c.count.push(n);
    }
    c
}

/// `clip8`: the rounded fixed-point sum as a byte.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an 8-bit image of `channels` interleaved channels (`[h, w, channels]`, row-major)
/// (1 or 3 channels) to `nw × nh` exactly as Pillow 13's `Image.resize(..., Image.BILINEAR)` does.
///
/// The passes run in Pillow 13's order: horizontal first, unless the height loses more than
/// twice as many pixels as the width (`h − nh > 2 (w − nw)`, for speed). Pillow before 13.0
/// always ran the horizontal pass first; the two orders round differently in between, so an
/// image over about twice as tall as wide can differ by a gray level between Pillow versions.
pub fn resize_bilinear(src: &[u8], w: usize, h: usize, channels: usize, nw: usize, nh: usize) -> Vec<u8> {
    assert_eq!(src.len(), w * h * channels, "the buffer holds a {w}×{h}×{channels} image");
    assert!(nw > 0 && nh > 0, "resize to an empty image");
    let (shrink_h, shrink_w) = (h as i64 - nh as i64, w as i64 - nw as i64);
    let vertical_first = shrink_h > 0 && shrink_h > shrink_w * 2;
    if vertical_first {
        let tall = vertical_pass(src, w * channels, h, nh, 0);
        return horizontal_pass(&tall, w, nh, channels, nw);
    }
    let Some(v) = (nh != h).then(|| coefficients(h, nh)) else {
        return horizontal_pass(src, w, h, channels, nw);
    };
    // Only the rows the vertical pass reads go through the horizontal one.
    let (row0, row1) = (v.first[0], v.first[nh - 1] + v.count[nh - 1]);
    let wide = horizontal_pass(&src[row0 * w * channels..row1 * w * channels], w, row1 - row0, channels, nw);
    vertical_with(&v, &wide, nw * channels, nh, row0)
}

/// `[rows, w, channels]` → `[rows, nw, channels]` (a copy when `nw == w`).
fn horizontal_pass(src: &[u8], w: usize, rows: usize, channels: usize, nw: usize) -> Vec<u8> {
    if nw == w {
        return src.to_vec();
    }
    let c = coefficients(w, nw);
    let mut out = vec![0u8; rows * nw * channels];
    match channels {
        1 => horizontal_rows::<1>(src, &c, w, nw, &mut out),
        3 => horizontal_rows::<3>(src, &c, w, nw, &mut out),
        _ => unimplemented!("resampling is for gray and RGB images"),
    }
    out
}

/// The horizontal pass for `C` interleaved channels: per output pixel, the `C` sums side by side.
fn horizontal_rows<const C: usize>(src: &[u8], c: &Coefficients, w: usize, nw: usize, out: &mut [u8]) {
    let half = 1i32 << (PRECISION_BITS - 1);
    for (in_row, out_row) in src.chunks_exact(w * C).zip(out.chunks_exact_mut(nw * C)) {
        for (xx, px) in out_row.chunks_exact_mut(C).enumerate() {
            let k = &c.weights[xx * c.taps..xx * c.taps + c.count[xx]];
            let pixels = &in_row[c.first[xx] * C..(c.first[xx] + k.len()) * C];
            let mut sums = [half; C];
            for (p, &weight) in pixels.chunks_exact(C).zip(k) {
                for ch in 0..C {
                    sums[ch] += i32::from(p[ch]) * weight;
                }
            }
            for ch in 0..C {
                px[ch] = clip8(sums[ch]);
            }
        }
    }
}

/// `[h, row]` → `[nh, row]` bytes (a copy when `nh == h`); the source starts at image row `row0`.
fn vertical_pass(src: &[u8], row: usize, h: usize, nh: usize, row0: usize) -> Vec<u8> {
    if nh == h {
        return src.to_vec();
    }
    vertical_with(&coefficients(h, nh), src, row, nh, row0)
}

fn vertical_with(v: &Coefficients, src: &[u8], row: usize, nh: usize, row0: usize) -> Vec<u8> {
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = vec![0u8; nh * row];
    let mut sums = vec![0i32; row];
    for (yy, out_row) in out.chunks_exact_mut(row).enumerate() {
        sums.fill(half);
        let k = &v.weights[yy * v.taps..yy * v.taps + v.count[yy]];
        for (y, &weight) in k.iter().enumerate() {
            let at = (v.first[yy] - row0 + y) * row;
            for (s, &p) in sums.iter_mut().zip(&src[at..at + row]) {
                *s += i32::from(p) * weight;
            }
        }
        for (o, &s) in out_row.iter_mut().zip(&sums) {
            *o = clip8(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_pillows() {
        // 4 → 2 (support 2): output 0 is centred on 1.0 and reads inputs 0..3 with triangle
        // weights 3/4, 3/4, 1/4, normalized to 3/7, 3/7, 1/7; output 1 reads 1..4.
        let c = coefficients(4, 2);
        assert_eq!((c.first.clone(), c.count.clone(), c.taps), (vec![0, 1], vec![3, 3], 5));
        let fixed = |w: f64| (w * f64::from(1u32 << PRECISION_BITS) + 0.5) as i32;
        assert_eq!(&c.weights[..5], &[fixed(3. / 7.), fixed(3. / 7.), fixed(1. / 7.), 0, 0]);
        assert_eq!(&c.weights[5..10], &[fixed(1. / 7.), fixed(3. / 7.), fixed(3. / 7.), 0, 0]);
    }

    #[test]
    fn constant_images_stay_constant_and_same_size_is_a_copy() {
        let src = vec![77u8; 37 * 23 * 3];
        assert!(resize_bilinear(&src, 37, 23, 3, 11, 50).iter().all(|&v| v == 77));
        let ramp: Vec<u8> = (0..=255).collect();
        assert_eq!(resize_bilinear(&ramp, 16, 16, 1, 16, 16), ramp);
    }
}
