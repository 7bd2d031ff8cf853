//! Feature importance for a class: `FI(c, j) = mean over images of r_j(x) · W[c, j]` (bias
//! excluded), and the top-k features by it (method §b).

/// `features`: `[N, F]` row-major; `class_weights`: the classifier's row for the class, `[F]`.
/// Returns `[F]`. Sums run in f64 so a million images lose nothing to rounding.
pub fn feature_importance(features: &[f32], class_weights: &[f32]) -> Vec<f32> {
    let f = class_weights.len();
    let n = features.len() / f.max(1);
    let mut sums = vec![0f64; f];
    for row in features.chunks_exact(f) {
        for (s, r) in sums.iter_mut().zip(row) {
            *s += f64::from(*r);
        }
    }
    sums.iter().zip(class_weights).map(|(s, w)| (s / n.max(1) as f64 * f64::from(*w)) as f32).collect()
}

/// The `k` largest scores, descending, as `(index, score)`; ties keep the lower index first.
pub fn top_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|i| (i, scores[i])).collect()
}

/// Softmax of one logit vector.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_is_mean_activation_times_weight() {
        let features = [1.0, 2.0, 0.0, 3.0, 4.0, 0.0];
        let fi = feature_importance(&features, &[1.0, -1.0, 5.0]);
        assert_eq!(fi, vec![2.0, -3.0, 0.0]);
        assert_eq!(top_k(&fi, 2), vec![(0, 2.0), (2, 0.0)]);
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1]);
    }
}
