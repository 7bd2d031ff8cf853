//! The torchvision ResNet family in burn, wrapped as the robustness library wraps it: inputs
//! are clamped to [0, 1] and normalized inside the model, so gradients (the feature attack)
//! are taken with respect to the image itself.

mod block;
pub mod source;

use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

pub use block::{Block, ConvBn, ConvSpec, PackedConv};
use source::{ParamSource, RandomInit, Weights};

use crate::checkpoint::StateDict;
use crate::error::Error;
use crate::preprocess::Normalization;

/// Residual block type.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3×3 convolutions (ResNet-18/34).
    Basic,
    /// 1×1, 3×3, 1×1 with 4× expansion (ResNet-50 and deeper, wide and ResNeXt variants).
    Bottleneck,
}

/// The first layers, before the residual stages.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Stem {
    /// torchvision's: 7×7 convolution with stride 2, then 3×3 max-pool with stride 2 (×32
    /// downsampling in all: 7×7 maps for 224×224 inputs).
    ImageNet,
    /// For small images: a 3×3 convolution with stride 2 and no max-pool (×16 downsampling:
    /// 7×7 maps for 112×112 inputs). Same keys as torchvision's.
    Compact,
}

/// A torchvision-compatible ResNet: `resnet50()` is the robust model's architecture.
#[derive(Config, Debug, PartialEq)]
pub struct ResNetConfig {
    pub block: BlockKind,
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Channels of the stem and of the first stage's blocks (torchvision: 64). Smaller values
    /// give the reduced-width models used in tests.
    #[config(default = 64)]
    pub base_width: usize,
    /// Bottleneck width per group at `base_width` 64 (wide ResNets: 128).
    #[config(default = 64)]
    pub width_per_group: usize,
    /// Groups of the 3×3 bottleneck convolution (ResNeXt: 32).
    #[config(default = 1)]
    pub groups: usize,
    #[config(default = 1000)]
    pub num_classes: usize,
    #[config(default = "Stem::ImageNet")]
    pub stem: Stem,
}

impl ResNetConfig {
    pub fn resnet18() -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2])
    }
    pub fn resnet34() -> Self {
        Self::new(BlockKind::Basic, [3, 4, 6, 3])
    }
    pub fn resnet50() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3])
    }
    pub fn resnet101() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 23, 3])
    }
    pub fn resnet152() -> Self {
        Self::new(BlockKind::Bottleneck, [3, 8, 36, 3])
    }
    pub fn wide_resnet50_2() -> Self {
        Self::resnet50().with_width_per_group(128)
    }
    pub fn wide_resnet101_2() -> Self {
        Self::resnet101().with_width_per_group(128)
    }
    pub fn resnext50_32x4d() -> Self {
        Self::resnet50().with_groups(32).with_width_per_group(4)
    }

    /// The architectures by their torchvision names.
    pub const NAMES: [&'static str; 8] = [
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "resnext50_32x4d",
    ];

    pub fn by_name(name: &str) -> Option<Self> {
        Some(match name {
            "resnet18" => Self::resnet18(),
            "resnet34" => Self::resnet34(),
            "resnet50" => Self::resnet50(),
            "resnet101" => Self::resnet101(),
            "resnet152" => Self::resnet152(),
            "wide_resnet50_2" => Self::wide_resnet50_2(),
            "wide_resnet101_2" => Self::wide_resnet101_2(),
            "resnext50_32x4d" => Self::resnext50_32x4d(),
            _ => return None,
        })
    }

    pub fn expansion(&self) -> usize {
        match self.block {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }

    /// Size of the penultimate feature vector (2048 for ResNet-50).
    pub fn feature_dim(&self) -> usize {
        self.base_width * 8 * self.expansion()
    }

    /// Reads the architecture off a torchvision state dict's shapes.
    pub fn infer(sd: &StateDict) -> Result<Self, Error> {
        let fail = |m: String| Error::checkpoint(&sd.source, m);
        let stem = sd.shape("conv1.weight").ok_or_else(|| {
            fail(format!("tensor `conv1.weight` is missing: not a torchvision ResNet state dict{}", sample_keys(sd)))
        })?;
        let base_width = stem[0];
        let block = if sd.shape("layer1.0.conv3.weight").is_some() { BlockKind::Bottleneck } else { BlockKind::Basic };
        let mut layers = [0; 4];
        for (s, n) in layers.iter_mut().enumerate() {
            while sd.shape(&format!("layer{}.{}.conv1.weight", s + 1, *n)).is_some() {
                *n += 1;
            }
            if *n == 0 {
                return Err(fail(format!(
                    "tensor `layer{}.0.conv1.weight` is missing: not a torchvision ResNet",
                    s + 1
                )));
            }
        }
        let num_classes =
            sd.shape("fc.weight").map(|s| s[0]).ok_or_else(|| fail("tensor `fc.weight` is missing".into()))?;
        let stem = if stem[2] == 3 { Stem::Compact } else { Stem::ImageNet };
        let mut config =
            Self::new(block, layers).with_base_width(base_width).with_num_classes(num_classes).with_stem(stem);
        if block == BlockKind::Bottleneck {
            // Width and groups from the first bottleneck; if its shapes are inconsistent, assume
            // a plain bottleneck and let loading name the tensor that does not fit.
            let width = sd.shape("layer1.0.conv1.weight").map_or(base_width, |s| s[0]);
            let per_group = sd.shape("layer1.0.conv2.weight").map_or(width, |s| s[1]);
            let groups = if per_group > 0 && width.is_multiple_of(per_group) { width / per_group } else { 1 };
            config = config.with_groups(groups).with_width_per_group(width / groups * 64 / base_width.max(1));
        }
        Ok(config)
    }

    /// A randomly initialized model (torchvision's initialization), seeded.
    pub fn init(&self, device: &Device, seed: u64) -> ResNet {
        self.build(&mut RandomInit::new(device, seed), Normalization::IMAGENET)
            .expect("random initialization cannot fail")
    }

    /// The model with weights from `sd`, which must match this architecture exactly.
    pub fn load(&self, sd: &StateDict, device: &Device) -> Result<ResNet, Error> {
        self.load_with_keys(sd, device).map(|(model, _)| model)
    }

    /// [`Self::load`], also returning the keys of `sd` the model uses.
    pub fn load_with_keys(&self, sd: &StateDict, device: &Device) -> Result<(ResNet, Vec<String>), Error> {
        let normalization = sd.normalization.unwrap_or(Normalization::IMAGENET);
        let mut weights = Weights { state: sd, device: device.clone(), used: Vec::new() };
        let model = self.build(&mut weights, normalization)?;
        Ok((model, weights.used))
    }

    fn build(&self, src: &mut dyn ParamSource, normalization: Normalization) -> Result<ResNet, Error> {
        let kernel = match self.stem {
            Stem::ImageNet => 7,
            Stem::Compact => 3,
        };
        let stem = ConvBn::build(ConvSpec::new(3, self.base_width, kernel, 2), "conv1", "bn1", src)?;
        let expansion = self.expansion();
        let mut c_in = self.base_width;
        let mut stages = Vec::with_capacity(4);
        for (s, &n) in self.layers.iter().enumerate() {
            let planes = self.base_width << s;
            let c_out = planes * expansion;
            let mut blocks = Vec::with_capacity(n);
            for b in 0..n {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let specs = match self.block {
                    BlockKind::Basic => {
                        vec![ConvSpec::new(c_in, planes, 3, stride), ConvSpec::new(planes, planes, 3, 1)]
                    }
                    BlockKind::Bottleneck => {
                        let width = planes * self.width_per_group / 64 * self.groups;
                        vec![
                            ConvSpec::new(c_in, width, 1, 1),
                            ConvSpec { groups: self.groups, ..ConvSpec::new(width, width, 3, stride) },
                            ConvSpec::new(width, c_out, 1, 1),
                        ]
                    }
                };
                let downsample = (stride != 1 || c_in != c_out).then(|| ConvSpec::new(c_in, c_out, 1, stride));
                blocks.push(Block::build(&specs, downsample, &format!("layer{}.{b}", s + 1), src)?);
                c_in = c_out;
            }
            stages.push(blocks);
        }
        let (weight, bias) = src.linear("fc", c_in, self.num_classes)?;
        Ok(ResNet {
            stem,
            maxpool: (self.stem == Stem::ImageNet).then(|| {
                MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init()
            }),
            stages,
            fc: Linear {
                weight: burn::module::Param::from_tensor(weight),
                bias: Some(burn::module::Param::from_tensor(bias)),
            },
            mean: normalization.mean,
            std: normalization.std,
        })
    }
}

fn sample_keys(sd: &StateDict) -> String {
    let keys: Vec<&str> = sd.tensors.keys().take(3).map(String::as_str).collect();
    if keys.is_empty() { String::new() } else { format!(" (it has e.g. {})", keys.join(", ")) }
}

/// A ResNet with its input wrapper.
#[derive(Module, Debug)]
pub struct ResNet {
    /// `conv1` + `bn1`.
    pub stem: ConvBn,
    /// `None` for the compact stem.
    pub maxpool: Option<MaxPool2d>,
    /// `layer1` … `layer4`.
    pub stages: Vec<Vec<Block>>,
    pub fc: Linear,
    /// Input normalization, applied after clamping to [0, 1].
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// Everything one forward pass gives.
#[derive(Debug, Clone)]
pub struct Forward {
    /// `[N, num_classes]`.
    pub logits: Tensor<2>,
    /// `[N, F]`: the global average pool of `layer4` (F = 2048 for ResNet-50), post-ReLU.
    pub features: Tensor<2>,
    /// `[N, F, H/32, W/32]`: `layer4`'s maps (7×7 for 224×224 input), post-ReLU.
    pub layer4: Tensor<4>,
}

impl ResNet {
    /// `[N, 3, H, W]` images in [0, 1] → logits, features and `layer4` maps.
    pub fn forward(&self, images: Tensor<4>) -> Forward {
        let layer4 = self.layer4(images);
        let [n, c, _, _] = layer4.dims();
        let features = layer4.clone().mean_dim(3).mean_dim(2).reshape([n, c]);
        let logits = self.fc.forward(features.clone());
        Forward { logits, features, layer4 }
    }

    /// `[N, 3, H, W]` → `[N, F, H/32, W/32]` (`H/16` with the compact stem).
    pub fn layer4(&self, images: Tensor<4>) -> Tensor<4> {
        let device = images.device();
        let mean = Tensor::<1>::from_floats(self.mean, &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats(self.std, &device).reshape([1, 3, 1, 1]);
        let x = (images.clamp(0.0, 1.0) - mean) / std;
        let mut x = self.stem.forward_fused(x, None, true);
        if let Some(pool) = &self.maxpool {
            x = match self.stem.runs_packed(&x) {
                // Keeps the stem's channels-last output so for layer1.
                true => crate::cpu::extension::max_pool(x, 3, 2, 1),
                false => pool.forward(x),
            };
        }
        for block in self.stages.iter().flatten() {
            x = block.forward(x);
        }
        x
    }

    /// The same model for inference only, every batch norm folded into its convolution
    /// ([`ConvBn::fold`]): one pass over each activation instead of several. What
    /// [`crate::Engine`] runs.
    pub fn fold_batch_norms(self) -> Self {
        ResNet {
            stem: self.stem.fold(),
            stages: self.stages.into_iter().map(|blocks| blocks.into_iter().map(Block::fold).collect()).collect(),
            ..self
        }
    }

    /// The folded model's convolutions moved onto the engine's CPU kernels
    /// ([`ConvBn::pack`]) when `device` is burn's `flex` and this CPU has a kernel
    /// ([`crate::cpu::Isa::detect`]); the model unchanged otherwise. What [`crate::Engine`] runs.
    pub fn pack_for(self, device: &Device) -> Self {
        let flex = matches!(device.as_dispatch(), burn::backend::DispatchDevice::Flex(_));
        if !flex || crate::cpu::Isa::detect().is_none() {
            return self;
        }
        ResNet {
            stem: self.stem.pack(),
            stages: self.stages.into_iter().map(|blocks| blocks.into_iter().map(Block::pack).collect()).collect(),
            ..self
        }
    }

    /// The packed model ([`Self::pack_for`]) as a network that computes a feature's input
    /// gradient on the CPU kernels ([`crate::cpu::gradient`]); `None` unless every convolution
    /// is packed. Its weights are packed again, transposed, here: build it once per attack.
    pub fn gradient_net(&self) -> Option<crate::cpu::gradient::Net> {
        let blocks = self.stages.iter().flatten().map(Block::gradient_block).collect::<Option<_>>()?;
        Some(crate::cpu::gradient::Net {
            isa: crate::cpu::Isa::detect()?,
            mean: self.mean,
            std: self.std,
            stem: self.stem.gradient_layer()?,
            max_pool: self.maxpool.is_some(),
            blocks,
        })
    }

    /// `[N, F]` features only.
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward(images).features
    }

    /// F: 2048 for ResNet-50.
    pub fn feature_dim(&self) -> usize {
        self.fc.weight.dims()[0]
    }

    pub fn num_classes(&self) -> usize {
        self.fc.weight.dims()[1]
    }

    /// The weights as a torchvision state dict on the host, with this model's normalization
    /// (the inverse of [`ResNetConfig::load`]).
    pub fn state_dict(&self, source: &str) -> StateDict {
        let mut out = Vec::new();
        self.stem.export("conv1", "bn1", &mut out);
        for (s, blocks) in self.stages.iter().enumerate() {
            for (b, block) in blocks.iter().enumerate() {
                block.export(&format!("layer{}.{b}", s + 1), &mut out);
            }
        }
        // burn's Linear holds [d_in, d_out]; torch stores [d_out, d_in].
        let w = block::host_tensor(self.fc.weight.val().transpose());
        out.push(("fc.weight".into(), w));
        if let Some(b) = &self.fc.bias {
            out.push(("fc.bias".into(), block::host_tensor(b.val())));
        }
        StateDict {
            source: source.to_owned(),
            format: crate::checkpoint::Format::Safetensors,
            layout: crate::checkpoint::Layout::Torchvision,
            tensors: out.into_iter().collect(),
            normalization: Some(Normalization { mean: self.mean, std: self.std }),
            class_names: None,
            view: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn state_dict_round_trips_through_load() {
        let device = Device::flex();
        for config in [
            ResNetConfig::resnet18().with_base_width(8).with_num_classes(7),
            ResNetConfig::new(BlockKind::Bottleneck, [2, 1, 1, 1])
                .with_base_width(8)
                .with_num_classes(5)
                .with_stem(Stem::Compact),
        ] {
            let model = config.init(&device, 3);
            let sd = model.state_dict("test");
            assert_eq!(ResNetConfig::infer(&sd).unwrap(), config);
            let back = config.load(&sd, &device).unwrap();
            let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
            let (a, b) = (model.valid().forward(x.clone()).logits, back.forward(x).logits);
            let diff: f32 = (a - b).abs().max().into_scalar();
            assert!(diff < 1e-5, "{diff}");
        }
    }

    #[test]
    fn folding_batch_norms_keeps_the_function_and_its_export() {
        let device = Device::flex();
        let config = ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1]).with_base_width(8).with_num_classes(5);
        // Non-trivial statistics: trained weights are far from initialization's γ=1, β=0, μ=0, σ²=1.
        let mut sd = config.init(&device, 5).state_dict("test");
        for (key, t) in sd.tensors.iter_mut() {
            for (i, v) in t.data.iter_mut().enumerate() {
                let r = ((i * 7919 + key.len() * 31) % 97) as f32 / 97.0;
                if key.ends_with("running_var") {
                    *v = 0.5 + r;
                } else if key.ends_with("running_mean") || key.ends_with("bn1.bias") || key.ends_with("bn2.bias") {
                    *v = r - 0.5;
                } else if key.contains(".bn") && key.ends_with(".weight") {
                    *v = 0.5 + r;
                }
            }
        }
        let model = config.load(&sd, &device).unwrap();
        let folded = config.load(&sd, &device).unwrap().fold_batch_norms();
        assert!(folded.stem.bn.is_none() && folded.stages[3][0].convs[1].bn.is_none());
        assert_eq!(folded.stages[1][0].downsample.as_ref().map(|d| d.subsample), Some(2));
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &device);
        let (a, b) = (model.forward(x.clone()), folded.forward(x.clone()));
        let scale: f32 = a.layer4.clone().abs().max().into_scalar();
        let diff: f32 = (a.layer4 - b.layer4).abs().max().into_scalar();
        assert!(scale > 0.0 && diff <= 1e-5 * scale.max(1.0), "layer4 differs by {diff} (max {scale})");
        // Exported as identity batch norms, the folded model reloads to the same function.
        let back = config.load(&folded.state_dict("folded"), &device).unwrap();
        let diff: f32 = (back.forward(x).logits - a.logits).abs().max().into_scalar();
        assert!(diff < 1e-4, "{diff}");
    }

    /// Whether the CPU kernels run here; when not, only because this CPU has none or
    /// `SALIENT_CPU_KERNELS` turned them off.
    fn kernels_chosen() -> bool {
        let chosen = crate::cpu::Isa::detect().is_some();
        let none = crate::cpu::Isa::ALL.iter().all(|isa| !isa.is_supported());
        assert!(chosen || none || std::env::var_os(crate::cpu::kernel::ENV).is_some(), "no CPU kernel chosen");
        chosen
    }

    /// The packed model (the engine's CPU kernels) computes the folded model's function,
    /// exports the same weights, and gives the same input gradients through autodiff (on burn's
    /// convolutions: the attack's path where nothing is packed).
    #[test]
    fn packing_keeps_the_function_its_export_and_its_gradients() {
        let device = Device::flex();
        if !kernels_chosen() {
            return;
        }
        for (config, side) in [
            (ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1]).with_base_width(8).with_num_classes(5), 64),
            (
                ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
                    .with_base_width(8)
                    .with_num_classes(7)
                    .with_stem(Stem::Compact),
                40,
            ),
        ] {
            let sd = config.init(&device, 3).state_dict("test");
            let folded = config.load(&sd, &device).unwrap().fold_batch_norms();
            let packed = config.load(&sd, &device).unwrap().fold_batch_norms().pack_for(&device);
            assert!(packed.stem.packed.is_some() && packed.stages[3][0].convs.iter().all(|c| c.packed.is_some()));
            let x = Tensor::<4>::random([3, 3, side, side], Distribution::Uniform(0.0, 1.0), &device);
            let (a, b) = (folded.forward(x.clone()), packed.forward(x.clone()));
            let scale: f32 = a.layer4.clone().abs().max().into_scalar();
            let diff: f32 = (a.layer4.clone() - b.layer4.clone()).abs().max().into_scalar();
            assert!(scale > 0.0 && diff <= 1e-5 * scale.max(1.0), "layer4 differs by {diff} (max {scale})");
            let diff: f32 = (a.logits.clone() - b.logits).abs().max().into_scalar();
            assert!(diff <= 1e-4, "logits differ by {diff}");
            let (ea, eb) = (folded.state_dict("a"), packed.state_dict("b"));
            assert_eq!(ea.tensors.keys().collect::<Vec<_>>(), eb.tensors.keys().collect::<Vec<_>>());
            for (k, t) in &ea.tensors {
                assert_eq!((&t.shape, &t.data), (&eb.tensors[k].shape, &eb.tensors[k].data), "{k}");
            }
            let grad = |m: &ResNet| {
                let t = x.clone().autodiff().require_grad();
                let grads = (m.features(t.clone()) * m.features(t.clone())).sum().backward();
                t.grad(&grads).unwrap()
            };
            let (ga, gb) = (grad(&folded), grad(&packed));
            let scale: f32 = ga.clone().abs().max().into_scalar();
            let diff: f32 = (ga - gb).abs().max().into_scalar();
            assert!(scale > 0.0 && diff <= 1e-4 * scale, "gradients differ by {diff} (max {scale})");
        }
    }

    /// The feature attack's gradient on the CPU kernels equals autodiff's through burn's
    /// convolutions, for every block kind, both stems, odd sizes (partial blocks, uneven
    /// strides) and images with saturated pixels (the clamp passes gradients at 0 and 1).
    #[test]
    fn the_kernels_feature_gradient_is_autodiffs() {
        let device = Device::flex();
        if !kernels_chosen() {
            return;
        }
        for (config, side) in [
            (ResNetConfig::new(BlockKind::Bottleneck, [2, 1, 2, 1]).with_base_width(8).with_num_classes(5), 67),
            (
                ResNetConfig::new(BlockKind::Basic, [1, 2, 1, 1])
                    .with_base_width(8)
                    .with_num_classes(7)
                    .with_stem(Stem::Compact),
                45,
            ),
        ] {
            // One initialization loaded twice (the random source is shared with other tests).
            let sd = config.init(&device, 11).state_dict("test");
            let folded = config.load(&sd, &device).unwrap().fold_batch_norms();
            let net = config.load(&sd, &device).unwrap().fold_batch_norms().pack_for(&device).gradient_net();
            let net = net.expect("a packed model has a gradient network");
            assert!(folded.gradient_net().is_none(), "only a packed model has one");
            let x = Tensor::<4>::random([2, 3, side, side], Distribution::Uniform(-0.2, 1.2), &device).clamp(0.0, 1.0);
            let host: Vec<f32> = x.clone().into_data().try_to_vec().unwrap();
            // The two strongest features and the weakest (often dead: a zero gradient).
            let values: Vec<f32> = folded.features(x.clone()).sum_dim(0).into_data().try_to_vec().unwrap();
            let mut order: Vec<usize> = (0..values.len()).collect();
            order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
            for feature in [order[0], order[1], order[order.len() - 1]] {
                let t = x.clone().autodiff().require_grad();
                let r = folded.features(t.clone()).slice([0..2, feature..feature + 1]);
                let grads = r.clone().sum().backward();
                let want: Vec<f32> = t.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
                let want_values: Vec<f32> = r.without_autodiff().into_data().try_to_vec().unwrap();
                let got = net.feature_gradient(&host, 2, (side, side), feature);
                for (a, b) in got.values.iter().zip(&want_values) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "feature {feature}: value {a} vs {b}");
                }
                let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let diff = got.gradient.iter().zip(&want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                let live = feature != order[order.len() - 1];
                assert!(scale > 0.0 || !live, "feature {feature} has no gradient");
                assert!(diff <= 1e-4 * scale, "feature {feature}: gradients differ by {diff} (max {scale})");
            }
        }
    }
}
