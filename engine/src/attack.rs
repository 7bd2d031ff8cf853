//! The feature attack ("amplified visual attribute", method §d): normalized L2 gradient ascent
//! on one neural feature, `x ← clamp(x + step · g / (‖g‖₂ + 1e-10), 0, 1)`, no projection.

use burn::tensor::{Tensor, TensorData};

use crate::cpu::gradient::Net;
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
/// plain device: only the input carries autodiff, so the weights act as constants. A model on
/// the engine's CPU kernels takes its gradients there too ([`crate::cpu::gradient`]), without
/// an autodiff graph (its network is built here: [`crate::Engine::attack`] keeps it for many
/// attacks). `on_step(t)` is called after each step.
pub fn feature_attack(
    model: &ResNet,
    images: Tensor<4>,
    feature: usize,
    options: AttackOptions,
    on_step: impl FnMut(usize),
) -> Attacked {
    let net = if options.steps > 0 { model.gradient_net() } else { None };
    feature_attack_with(model, net.as_ref(), images, feature, options, on_step)
}

/// [`feature_attack`] with the model's gradient network built beforehand
/// ([`ResNet::gradient_net`]; `None`: through autodiff).
pub fn feature_attack_with(
    model: &ResNet,
    net: Option<&Net>,
    images: Tensor<4>,
    feature: usize,
    options: AttackOptions,
    mut on_step: impl FnMut(usize),
) -> Attacked {
    let [n, _, h, w] = images.dims();
    let device = images.device();
    // `[N, 1]` values of the feature and `[N, 3, H, W]` their input gradients.
    let value_and_gradient = |x: &Tensor<4>| -> (Tensor<2>, Tensor<4>) {
        if let Some(net) = net {
            let host = x.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 images");
            let got = net.feature_gradient(&host, n, (h, w), feature);
            let values = Tensor::<2>::from_data(TensorData::new(got.values, [n, 1]), &device);
            return (values, Tensor::from_data(TensorData::new(got.gradient, [n, 3, h, w]), &device));
        }
        let tracked = x.clone().autodiff().require_grad();
        let r = model.features(tracked.clone()).slice([0..n, feature..feature + 1]);
        let grads = r.clone().sum().backward();
        let g = tracked.grad(&grads).expect("the input requires a gradient");
        (r.without_autodiff(), g)
    };
    let mut x = images.without_autodiff();
    let mut before = None;
    for t in 0..options.steps {
        let (r, g) = value_and_gradient(&x);
        before.get_or_insert(r);
        // Per-image L2 norm over C·H·W: [N, 1, 1, 1].
        let norm = g.clone().square().sum_dims(&[1, 2, 3]).sqrt() + 1e-10;
        x = (x + g / norm * options.step_size).clamp(0.0, 1.0);
        on_step(t + 1);
    }
    let after = model.features(x.clone()).slice([0..n, feature..feature + 1]);
    let before = before.unwrap_or_else(|| after.clone());
    Attacked { images: x, before: before.reshape([n]), after: after.reshape([n]) }
}
