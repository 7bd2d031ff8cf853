//! Feature importance for a class: `FI(c, j) = mean over images of r_j(x) · W[c, j]` (bias
//! excluded), and the top-k features by it (method §b).

/// Running mean of feature vectors, so importance can stream over any number of images.
/// Sums run in f64: a million images lose nothing to rounding.
#[derive(Debug, Clone, Default)]
pub struct MeanFeatures {
    sums: Vec<f64>,
    count: usize,
}

impl MeanFeatures {
    /// Adds one image's `[F]` features.
    pub fn add(&mut self, features: &[f32]) {
        if self.sums.is_empty() {
            self.sums = vec![0.0; features.len()];
        }
        for (s, r) in self.sums.iter_mut().zip(features) {
            *s += f64::from(*r);
        }
        self.count += 1;
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// `FI(c, j) = mean_x r_j(x) · W[c, j]` for the class whose weights are `class_weights` (`[F]`).
    pub fn importance(&self, class_weights: &[f32]) -> Vec<f32> {
        let n = self.count.max(1) as f64;
        self.sums.iter().zip(class_weights).map(|(s, w)| (s / n * f64::from(*w)) as f32).collect()
    }
}

/// `features`: `[N, F]` row-major; `class_weights`: the classifier's row for the class, `[F]`.
/// Returns `[F]`.
pub fn feature_importance(features: &[f32], class_weights: &[f32]) -> Vec<f32> {
    let mut mean = MeanFeatures::default();
    for row in features.chunks_exact(class_weights.len().max(1)) {
        mean.add(row);
    }
    mean.importance(class_weights)
}

/// The `k` largest scores, descending, as `(index, score)`; ties keep the lower index first.
pub fn top_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.into_iter().take(k).map(|i| (i, scores[i])).collect()
}

/// The index of the largest score (the lowest index among equals; 0 for none): the top-1
/// class of a logit vector, as [`top_k`] ranks it.
pub fn argmax(scores: &[f32]) -> usize {
    (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a))).unwrap_or(0)
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
    fn argmax_breaks_ties_to_the_lower_index_as_top_k() {
        for scores in [vec![0.5, 2.0, 2.0, -1.0], vec![f32::NEG_INFINITY; 3], vec![1.0, f32::NAN, 3.0, 3.0]] {
            assert_eq!(argmax(&scores), top_k(&scores, 1)[0].0, "{scores:?}");
        }
        assert_eq!(argmax(&[]), 0);
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1]);
    }
}
