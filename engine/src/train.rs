//! Training a ResNet from scratch, plainly or adversarially (L2 PGD, as the robustness library
//! trains the robust ResNet-50), with burn's autodiff. Used for the synthetic benchmark's
//! small models; the same model code as inference.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::model::{ResNet, ResNetConfig};

/// Labelled images in memory, all `side × side` RGB.
pub struct TrainSet {
    /// `[N, side, side, 3]` row-major.
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    pub side: usize,
}

impl TrainSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[B, 3, side, side]` in [0, 1] for the images `idx`, each mirrored left-right where
    /// `flip` says so.
    pub fn batch(&self, idx: &[usize], flip: &[bool], device: &Device) -> Tensor<4> {
        let s = self.side;
        let mut data = vec![0f32; idx.len() * 3 * s * s];
        for (b, (&i, &f)) in idx.iter().zip(flip).enumerate() {
            let img = &self.pixels[i * s * s * 3..(i + 1) * s * s * 3];
            for y in 0..s {
                for x in 0..s {
                    let sx = if f { s - 1 - x } else { x };
                    for c in 0..3 {
                        data[((b * 3 + c) * s + y) * s + x] = img[(y * s + sx) * 3 + c] as f32 / 255.0;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(data, [idx.len(), 3, s, s]), device)
    }
}

/// How to train. `epsilon == 0` trains plainly.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// L2 radius of the adversarial perturbation (pixels in [0, 1]).
    pub epsilon: f32,
    pub pgd_steps: usize,
    /// Step size of each PGD step; the robustness library uses `2.5 · ε / steps`.
    pub pgd_step_size: f32,
    pub seed: u64,
}

/// What one epoch did.
#[derive(Debug, Clone, Copy)]
pub struct EpochReport {
    pub epoch: usize,
    /// Mean training loss (on the adversarial inputs when robust).
    pub loss: f32,
    /// Training accuracy on the inputs trained on.
    pub accuracy: f32,
}

/// L2 PGD against `model` (plain device, eval mode): the perturbed `[B, 3, H, W]` images, within
/// `epsilon` of `images` in L2 and inside [0, 1].
pub fn pgd_l2(
    model: &ResNet,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    epsilon: f32,
    steps: usize,
    step_size: f32,
) -> Tensor<4> {
    let loss_fn = CrossEntropyLossConfig::new().init(&images.device());
    let per_image_norm = |t: Tensor<4>| t.square().sum_dims(&[1, 2, 3]).sqrt();
    let mut x = images.clone();
    for _ in 0..steps {
        let tracked = x.clone().autodiff().require_grad();
        let loss = loss_fn.forward(model.forward(tracked.clone()).logits, labels.clone().autodiff());
        let grads = loss.backward();
        let g = tracked.grad(&grads).expect("the input requires a gradient");
        let g = g.clone() / (per_image_norm(g) + 1e-10);
        let delta = x + g * step_size - images.clone();
        // Project onto the ε-ball, then into the image range.
        let norm = per_image_norm(delta.clone());
        let scale = (norm.clone().recip() * epsilon).clamp_max(1.0);
        x = (images.clone() + delta * scale).clamp(0.0, 1.0);
    }
    x
}

/// Trains `config` from a seeded random start on `data`; `on_step(batches_done, total)` after
/// each batch, `on_epoch` after each epoch. Returns the model in eval mode on a plain device.
pub fn train(
    config: &ResNetConfig,
    data: &TrainSet,
    options: &TrainOptions,
    device: &Device,
    mut on_step: impl FnMut(usize, usize),
    mut on_epoch: impl FnMut(EpochReport),
) -> ResNet {
    let ad = device.clone().autodiff();
    let mut model = config.init(&ad, options.seed).train();
    let mut optim = AdamConfig::new().with_weight_decay(None).init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x05A1_7E27);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let per_epoch = data.len().div_ceil(options.batch_size);
    let total = per_epoch * options.epochs;
    let mut done = 0;
    for epoch in 0..options.epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for idx in order.chunks(options.batch_size) {
            let flip: Vec<bool> = idx.iter().map(|_| rand::RngExt::random_bool(&mut rng, 0.5)).collect();
            let labels: Vec<i64> = idx.iter().map(|&i| data.labels[i] as i64).collect();
            let images = data.batch(idx, &flip, device);
            let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [idx.len()]), device);
            let inputs = if options.epsilon > 0.0 && options.pgd_steps > 0 {
                pgd_l2(
                    &model.valid(),
                    images,
                    targets.clone(),
                    options.epsilon,
                    options.pgd_steps,
                    options.pgd_step_size,
                )
            } else {
                images
            };
            // Cosine decay of the learning rate over all steps.
            let lr = options.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * done as f64 / total as f64).cos());
            let logits = model.forward(inputs.autodiff()).logits;
            let loss = loss_fn.forward(logits.clone(), targets.clone().autodiff());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            let predicted = logits.without_autodiff().argmax(1).reshape([idx.len()]);
            correct += predicted.equal(targets).int().sum().into_scalar::<i64>() as usize;
            loss_sum += loss.without_autodiff().into_scalar::<f32>() as f64 * idx.len() as f64;
            done += 1;
            on_step(done, total);
        }
        on_epoch(EpochReport {
            epoch: epoch + 1,
            loss: (loss_sum / data.len() as f64) as f32,
            accuracy: correct as f32 / data.len() as f32,
        });
    }
    model.valid()
}
