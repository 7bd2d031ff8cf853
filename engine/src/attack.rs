//! The feature attack ("amplified visual attribute", method §d): normalized L2 gradient ascent
//! on one neural feature, `x ← clamp(x + step · g / (‖g‖₂ + 1e-10), 0, 1)`, no projection.

use burn::tensor::Tensor;

use crate::model::ResNet;

/// The reference's settings: 100 steps of size 10.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttackOptions {
    pub steps: usize,
    pub step_size: f32,
}

impl Default for AttackOptions {
    fn default() -> Self {
        AttackOptions { steps: 100, step_size: 10.0 }
    }
}

/// The attacked images and the feature's value before and after.
#[derive(Debug, Clone)]
pub struct Attacked {
    /// `[N, 3, H, W]` in [0, 1].
    pub images: Tensor<4>,
    /// `[N]`: r_j(x⁰).
    pub before: Tensor<1>,
    /// `[N]`: r_j(x^steps).
    pub after: Tensor<1>,
}

/// Runs the attack on `images` (`[N, 3, H, W]`, [0, 1]) for `feature`. The model stays on its
/// plain device: only the input carries autodiff, so the weights act as constants.
/// `on_step(t)` is called after each step.
pub fn feature_attack(
    model: &ResNet,
    images: Tensor<4>,
    feature: usize,
    options: AttackOptions,
    mut on_step: impl FnMut(usize),
) -> Attacked {
    let n = images.dims()[0];
    let value = |x: Tensor<4>| -> Tensor<2> { model.features(x).slice([0..n, feature..feature + 1]) };
    let mut x = images.without_autodiff();
    let mut before = None;
    for t in 0..options.steps {
        let tracked = x.clone().autodiff().require_grad();
        let r = value(tracked.clone());
        if t == 0 {
            before = Some(r.clone().without_autodiff());
        }
        let grads = r.sum().backward();
        let g = tracked.grad(&grads).expect("the input requires a gradient");
        // Per-image L2 norm over C·H·W: [N, 1, 1, 1].
        let norm = g.clone().square().sum_dims(&[1, 2, 3]).sqrt() + 1e-10;
        x = (x + g / norm * options.step_size).clamp(0.0, 1.0);
        on_step(t + 1);
    }
    let after = value(x.clone());
    let before = before.unwrap_or_else(|| after.clone());
    Attacked { images: x, before: before.reshape([n]), after: after.reshape([n]) }
}
