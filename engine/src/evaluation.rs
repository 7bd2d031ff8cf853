//! The noise-sensitivity protocol (method §g): Gaussian noise inside core or spurious regions,
//! accuracy under it, relative core sensitivity (RCS), class-balanced aggregates over trials.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// Standard normal noise for one image in one trial, `len` values, reproducible from
/// `(seed, trial, image)` alone: batching, sharding and order do not change it.
pub fn gaussian_noise(seed: u64, trial: u32, image: &str, len: usize) -> Vec<f32> {
    // FNV-1a over the image id, mixed with seed and trial, seeds a ChaCha8 stream.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in image.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let key = h ^ seed.rotate_left(17) ^ u64::from(trial).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    (0..len).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// Relative core sensitivity (CoRM; RFS in Hard ImageNet): with `ā = (core + spurious) / 2`,
/// 0 if ā is 0 or 1, else `(core − spurious) / (2·min(ā, 1 − ā))`, in [−1, 1]. `core` is the
/// accuracy with noise on the spurious regions, `spurious` with noise on the core regions.
pub fn rcs(core: f64, spurious: f64) -> f64 {
    let mean = (core + spurious) / 2.0;
    if mean <= 0.0 || mean >= 1.0 { 0.0 } else { (core - spurious) / (2.0 * mean.min(1.0 - mean)) }
}

/// A statistic over trials: mean, 95% confidence half-width (Student's t), and each trial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverTrials {
    pub ci95: f64,
    pub mean: f64,
    pub trials: Vec<f64>,
}

impl OverTrials {
    pub fn new(trials: Vec<f64>) -> Self {
        let n = trials.len() as f64;
        let mean = trials.iter().sum::<f64>() / n.max(1.0);
        let ci95 = if trials.len() < 2 {
            0.0
        } else {
            let var = trials.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0);
            t95(trials.len() - 1) * (var / n).sqrt()
        };
        OverTrials { mean, ci95, trials }
    }
}

/// Two-sided 95% quantile of Student's t with `dof` degrees of freedom.
fn t95(dof: usize) -> f64 {
    const T: [f64; 10] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
    match dof {
        0 => f64::NAN,
        d if d <= T.len() => T[d - 1],
        d if d <= 30 => 2.042 + (2.228 - 2.042) * (30 - d) as f64 / 20.0,
        _ => 1.96,
    }
}

/// Mean over classes of per-class accuracies (each class counts once, whatever its size).
pub fn class_balanced(per_class: &[f64]) -> f64 {
    if per_class.is_empty() { f64::NAN } else { per_class.iter().sum::<f64>() / per_class.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcs_follows_its_definition() {
        assert_eq!(rcs(0.0, 0.0), 0.0);
        assert_eq!(rcs(1.0, 1.0), 0.0);
        assert!((rcs(0.9, 0.5) - 0.4 / (2.0 * 0.3)).abs() < 1e-12);
        assert!((rcs(0.3, 0.1) - 0.2 / 0.4).abs() < 1e-12);
        assert_eq!(rcs(1.0, 0.0), 1.0);
        assert_eq!(rcs(0.0, 1.0), -1.0);
    }

    #[test]
    fn noise_is_reproducible_and_independent() {
        let a = gaussian_noise(7, 0, "n01_1", 1000);
        assert_eq!(a, gaussian_noise(7, 0, "n01_1", 1000));
        assert_ne!(a, gaussian_noise(7, 1, "n01_1", 1000));
        assert_ne!(a, gaussian_noise(7, 0, "n01_2", 1000));
        let mean = a.iter().sum::<f32>() / 1000.0;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15, "{mean} {var}");
    }

    #[test]
    fn confidence_interval_uses_student_t() {
        let s = OverTrials::new(vec![0.5, 0.6, 0.7]);
        assert!((s.mean - 0.6).abs() < 1e-12);
        assert!((s.ci95 - 4.303 * 0.1 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(OverTrials::new(vec![0.4]).ci95, 0.0);
    }
}
