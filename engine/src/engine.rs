//! [`Engine`]: a model on a device, and one forward pass from preprocessed views to host
//! results. The CLI and the browser app both go through it.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;

use crate::checkpoint::StateDict;
use crate::error::Error;
use crate::importance::{softmax, top_k};
use crate::model::{ResNet, ResNetConfig};
use crate::nam::FeatureMaps;
use crate::preprocess::{View, push_chw};

/// A loaded model.
pub struct Engine {
    pub model: ResNet,
    pub config: ResNetConfig,
    pub device: Device,
    /// Where the weights came from, for messages.
    pub source: String,
    /// The classifier's weights on the host, `[classes, F]` (torch layout).
    fc: Vec<f32>,
    /// Names of the classes (from the weights' metadata, else ImageNet's for 1000 classes).
    pub class_names: Vec<String>,
    /// The view of an image the model sees.
    pub view: View,
    /// The model's gradient network on the CPU kernels, built by the first attack.
    gradient: std::sync::OnceLock<Option<crate::cpu::gradient::Net>>,
}

/// What one forward pass gives for one image, on the host.
#[derive(Debug, Clone)]
pub struct ImageOutput {
    /// `[classes]`.
    pub logits: Vec<f32>,
    /// `[F]`: the neural features.
    pub features: Vec<f32>,
    /// `[F, h, w]` `layer4` maps, when asked for.
    pub maps: Option<FeatureMaps>,
}

impl ImageOutput {
    /// The `k` most probable classes as `(class, probability)`.
    pub fn top(&self, k: usize) -> Vec<(usize, f32)> {
        top_k(&softmax(&self.logits), k)
    }

    /// The most probable class and its probability.
    pub fn top1(&self) -> (usize, f32) {
        self.top(1)[0]
    }
}

/// Why the model predicted what it did for one image: the class, its probability, and the
/// features that contribute most to its logit.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub class: usize,
    pub prob: f32,
    /// `(feature, r_j(x)·W[class, j])`, largest first (ties: lower feature first).
    pub features: Vec<(usize, f32)>,
}

impl Engine {
    /// The architecture is read off the state dict; every tensor's shape is checked.
    pub fn from_state_dict(sd: &StateDict, device: &Device) -> Result<Self, Error> {
        let config = ResNetConfig::infer(sd)?;
        let model = config.load(sd, device)?.valid().fold_batch_norms().pack_for(device);
        let fc = sd.get("fc.weight", &[config.num_classes, config.feature_dim()])?.data.clone();
        let class_names = match &sd.class_names {
            Some(names) if names.len() == config.num_classes => names.clone(),
            Some(names) => {
                return Err(Error::checkpoint(
                    &sd.source,
                    format!(
                        "its metadata names {} classes, but the classifier has {}",
                        names.len(),
                        config.num_classes
                    ),
                ));
            }
            None => default_names(config.num_classes),
        };
        let view = sd.view.unwrap_or(View::IMAGENET);
        let gradient = std::sync::OnceLock::new();
        Ok(Engine { model, config, device: device.clone(), source: sd.source.clone(), fc, class_names, view, gradient })
    }

    /// The feature attack ([`crate::attack::feature_attack`]) on `images` (`[N, 3, H, W]`,
    /// [0, 1]); on the CPU kernels, the gradient network is built by the first call and kept.
    pub fn attack(
        &self,
        images: Tensor<4>,
        feature: usize,
        options: crate::attack::AttackOptions,
        on_step: impl FnMut(usize),
    ) -> crate::attack::Attacked {
        let net = (options.steps > 0).then(|| self.gradient.get_or_init(|| self.model.gradient_net()).as_ref());
        crate::attack::feature_attack_with(&self.model, net.flatten(), images, feature, options, on_step)
    }

    /// The engine's own CPU convolution kernels this model runs on, if any ([`crate::cpu`]).
    pub fn cpu_kernels(&self) -> Option<crate::cpu::Isa> {
        self.model.stem.packed.as_ref().and_then(|_| crate::cpu::Isa::detect())
    }

    /// Reads a checkpoint file (any supported format) and loads it.
    pub fn load(path: &std::path::Path, device: &Device) -> Result<Self, Error> {
        Self::from_state_dict(&StateDict::load(path)?, device)
    }

    /// The name of class `index`.
    pub fn class_name(&self, index: usize) -> String {
        self.class_names.get(index).cloned().unwrap_or_else(|| format!("class {index}"))
    }

    /// `sulphur butterfly (325)` (`class 7` for unnamed classes).
    pub fn class_label(&self, index: usize) -> String {
        let name = self.class_name(index);
        if name == format!("class {index}") { name } else { format!("{name} ({index})") }
    }

    /// The classifier's weights for `class`: `W[class, :]`, `[F]`.
    pub fn class_weights(&self, class: usize) -> &[f32] {
        let f = self.config.feature_dim();
        &self.fc[class * f..(class + 1) * f]
    }

    /// Each feature's contribution to `class`'s logit on one image, `r_j(x)·W[class, j]` (`[F]`):
    /// the per-image form of feature importance.
    pub fn contributions(&self, out: &ImageOutput, class: usize) -> Vec<f32> {
        out.features.iter().zip(self.class_weights(class)).map(|(r, w)| r * w).collect()
    }

    /// The predicted class of one image and its `k` most contributing features.
    pub fn explain(&self, out: &ImageOutput, k: usize) -> Explanation {
        let (class, prob) = out.top1();
        Explanation { class, prob, features: top_k(&self.contributions(out, class), k) }
    }

    /// `[N, 3, S, S]` from model views (see [`Engine::view`]).
    pub fn batch(&self, views: &[RgbImage]) -> Tensor<4> {
        let (w, h) = views.first().map_or((0, 0), |v| v.dimensions());
        let mut data = Vec::with_capacity(views.len() * 3 * (w * h) as usize);
        for v in views {
            push_chw(v, &mut data);
        }
        Tensor::from_data(TensorData::new(data, [views.len(), 3, h as usize, w as usize]), &self.device)
    }

    /// One forward pass over `views`, results read back asynchronously (required on WebGPU).
    pub async fn infer_async(&self, views: &[RgbImage], keep_maps: bool) -> Result<Vec<ImageOutput>, Error> {
        if views.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.model.forward(self.batch(views));
        let [n, c, h, w] = out.layer4.dims();
        let logits = host(out.logits).await?;
        let features = host(out.features).await?;
        let maps = if keep_maps { Some(host(out.layer4).await?) } else { None };
        let k = self.config.num_classes;
        Ok((0..n)
            .map(|i| ImageOutput {
                logits: logits[i * k..(i + 1) * k].to_vec(),
                features: features[i * c..(i + 1) * c].to_vec(),
                maps: maps.as_ref().map(|m| FeatureMaps {
                    channels: c,
                    h,
                    w,
                    data: m[i * c * h * w..(i + 1) * c * h * w].to_vec(),
                }),
            })
            .collect())
    }

    /// [`Self::infer_async`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn infer(&self, views: &[RgbImage], keep_maps: bool) -> Result<Vec<ImageOutput>, Error> {
        block_on(self.infer_async(views, keep_maps))
    }
}

/// Waits for a future on this thread (native only; the browser must `.await`).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// `[N, 3, S, S]` images in [0, 1] (an attack's result, say) back to 8-bit RGB views.
pub async fn to_images(images: Tensor<4>) -> Result<Vec<RgbImage>, Error> {
    let [n, _, h, w] = images.dims();
    let pixels = host(images).await?;
    let plane = h * w;
    Ok((0..n)
        .map(|k| {
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                image::Rgb(std::array::from_fn(|c| {
                    (pixels[(k * 3 + c) * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8
                }))
            })
        })
        .collect())
}

/// ImageNet's names for a 1000-class model, `class <i>` otherwise.
fn default_names(classes: usize) -> Vec<String> {
    (0..classes).map(|i| crate::imagenet::class_name(classes, i)).collect()
}

/// A tensor's values on the host.
pub async fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, Error> {
    let data = t.into_data_async().await.map_err(|e| Error::Backend(format!("{e:?}")))?;
    data.try_to_vec::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))
}

/// `ResNet-50`, or the parts of a non-standard configuration.
pub fn describe(c: &ResNetConfig) -> String {
    ResNetConfig::NAMES
        .iter()
        .find(|n| ResNetConfig::by_name(n).map(|s| s.with_num_classes(c.num_classes)).as_ref() == Some(c))
        .map(|n| n.to_string())
        .unwrap_or_else(|| {
            format!("ResNet ({:?} blocks {:?}, width {}, {} classes)", c.block, c.layers, c.base_width, c.num_classes)
        })
}
