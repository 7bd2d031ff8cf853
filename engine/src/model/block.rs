//! Building blocks: a convolution followed by batch normalization, and the residual block
//! (basic or bottleneck) made of them.

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::activation;
use burn::tensor::{Slice, Tensor, TensorData};

use super::source::ParamSource;
use crate::checkpoint::{DType, HostTensor};
use crate::cpu::pack::{self, ConvGeometry};
use crate::cpu::{extension, gradient};
use crate::error::Error;

/// `conv` (no bias) then eval-mode `bn`, as every torchvision ResNet convolution is; after
/// [`ConvBn::fold`], the convolution alone, with the batch norm folded into its weights and bias;
/// after [`ConvBn::pack`], that convolution also on the engine's CPU kernels.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    /// `None` once folded.
    pub bn: Option<BatchNorm>,
    /// Once folded, a strided 1×1 convolution (the downsampling shortcuts) runs as a
    /// subsampling by this step, then a stride-1 convolution: burn `flex` has a fast path for
    /// 1×1 stride 1 only, and the general path is 2–3× slower on these shapes. 1 otherwise.
    pub subsample: usize,
    /// The folded convolution packed for the engine's CPU kernels ([`crate::cpu`]), which run
    /// inference; `conv` stays for gradients (the feature attack), burn's own backward pass.
    pub packed: Option<PackedConv>,
}

/// A convolution's weights packed for the engine's CPU kernels ([`crate::cpu::pack`]); its
/// geometry is its `ConvBn`'s ([`ConvBn::packed_geometry`]).
#[derive(Module, Debug)]
pub struct PackedConv {
    /// `[panels·K·NR]`.
    pub weight: Param<Tensor<1>>,
    /// `[panels·NR]`, zero-padded.
    pub bias: Param<Tensor<1>>,
}

/// Shape of one convolution: `[out, in / groups, k, k]`, with its stride and groups.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
}

impl ConvSpec {
    pub fn new(c_in: usize, c_out: usize, kernel: usize, stride: usize) -> Self {
        ConvSpec { c_in, c_out, kernel, stride, groups: 1 }
    }
}

impl ConvBn {
    /// Builds from `source`: `conv` is the torchvision key of the convolution (`layer1.0.conv1`),
    /// `bn` that of its batch norm (`layer1.0.bn1`).
    pub fn build(spec: ConvSpec, conv: &str, bn: &str, src: &mut dyn ParamSource) -> Result<Self, Error> {
        let ConvSpec { c_in, c_out, kernel, stride, groups } = spec;
        let weight = src.conv(&format!("{conv}.weight"), [c_out, c_in / groups, kernel, kernel])?;
        let pad = kernel / 2;
        let conv = Conv2d {
            weight: Param::from_tensor(weight),
            bias: None,
            stride: [stride, stride],
            kernel_size: [kernel, kernel],
            dilation: [1, 1],
            groups,
            padding: PaddingConfig2d::Explicit(pad, pad, pad, pad),
        };
        let mut vec = |name: &str, default: f32| src.vector(&format!("{bn}.{name}"), c_out, default);
        let bn = BatchNorm {
            gamma: Param::from_tensor(vec("weight", 1.0)?),
            beta: Param::from_tensor(vec("bias", 0.0)?),
            training: Param::from_bool(true),
            running_mean: RunningState::new(vec("running_mean", 0.0)?),
            running_var: RunningState::new(vec("running_var", 1.0)?),
            momentum: 0.1,
            epsilon: 1e-5,
        };
        Ok(ConvBn { conv, bn: Some(bn), subsample: 1, packed: None })
    }

    /// The same function with the batch norm folded into the convolution (inference only: the
    /// running statistics become constants): with `s = γ / √(var + ε)`, weights `W·s` per output
    /// channel and bias `β − mean·s`. One pass over the activation instead of several.
    pub fn fold(self) -> Self {
        let Some(bn) = &self.bn else { return self };
        let conv = &self.conv;
        let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
        let bias = bn.beta.val() - bn.running_mean.value() * scale.clone();
        let [c_out] = scale.dims();
        let weight = conv.weight.val() * scale.reshape([c_out, 1, 1, 1]);
        let [sy, sx] = conv.stride;
        let pointwise =
            conv.kernel_size == [1, 1] && sy == sx && matches!(conv.padding, PaddingConfig2d::Explicit(0, 0, 0, 0));
        let (stride, subsample) = if pointwise { ([1, 1], sy) } else { (conv.stride, 1) };
        let conv = Conv2d {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(bias)),
            stride,
            kernel_size: conv.kernel_size,
            dilation: conv.dilation,
            groups: conv.groups,
            padding: conv.padding.clone(),
        };
        ConvBn { conv, bn: None, subsample, packed: None }
    }

    /// A folded convolution also on the engine's CPU kernels: its weights packed once, here, for
    /// every later call. Grouped, dilated or unevenly padded convolutions stay as they are.
    pub fn pack(self) -> Self {
        let conv = &self.conv;
        let [k, kx] = conv.kernel_size;
        let [sy, sx] = conv.stride;
        let p = k / 2;
        let eligible = self.packed.is_none()
            && self.bn.is_none()
            && k == kx
            && sy == sx
            && conv.groups == 1
            && conv.dilation == [1, 1]
            && matches!(conv.padding, PaddingConfig2d::Explicit(a, b, c, d) if [a, b, c, d] == [p; 4]);
        let Some(bias) = conv.bias.as_ref().filter(|_| eligible) else { return self };
        let g = self.packed_geometry();
        let device = conv.weight.val().device();
        let weight = pack::pack(&host_tensor(conv.weight.val()).data, &g);
        let bias = pack::pad_bias(&host_tensor(bias.val()).data, &g);
        let param =
            |v: Vec<f32>| Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device));
        let packed = PackedConv { weight: param(weight), bias: param(bias) };
        ConvBn { packed: Some(packed), ..self }
    }

    /// The convolution as the CPU kernels run it: a folded strided 1×1 convolution (stride 1
    /// after a subsampling) is one strided convolution again.
    pub fn packed_geometry(&self) -> ConvGeometry {
        let [c_out, c_in, k, _] = self.conv.weight.dims();
        ConvGeometry { c_in, c_out, kernel: k, stride: self.conv.stride[0] * self.subsample, pad: k / 2 }
    }

    /// This packed convolution for [`gradient::Net`] (the feature attack on the CPU kernels).
    pub fn gradient_layer(&self) -> Option<gradient::Layer> {
        let p = self.packed.as_ref()?;
        let (weight, bias) = (host_tensor(p.weight.val()).data, host_tensor(p.bias.val()).data);
        let oihw = host_tensor(self.conv.weight.val()).data;
        Some(gradient::Layer::new(&oihw, weight, bias, self.packed_geometry()))
    }

    /// Whether `x` goes through the engine's CPU kernels: packed, and no gradient wanted.
    pub fn runs_packed(&self, x: &Tensor<4>) -> bool {
        self.packed.is_some() && !x.device().is_autodiff()
    }

    /// `[N, C_in, H, W]` → `[N, C_out, H / stride, W / stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_fused(x, None, false)
    }

    /// `relu?(conv(x) + residual?)`: on packed weights, one pass.
    pub fn forward_fused(&self, x: Tensor<4>, residual: Option<Tensor<4>>, relu: bool) -> Tensor<4> {
        if let Some(p) = self.packed.as_ref().filter(|_| self.runs_packed(&x)) {
            let g = self.packed_geometry();
            return extension::packed_conv(x, p.weight.val(), p.bias.val(), residual, &g, relu);
        }
        let x = match self.subsample {
            1 => x,
            s => x.slice([
                Slice::full(),
                Slice::full(),
                Slice::new(0, None, s as isize),
                Slice::new(0, None, s as isize),
            ]),
        };
        let mut x = self.conv.forward(x);
        if let Some(bn) = &self.bn {
            x = bn.forward(x);
        }
        if let Some(r) = residual {
            x = x + r;
        }
        if relu { activation::relu(x) } else { x }
    }

    /// Host copies of the parameters under their torchvision keys (the inverse of [`Self::build`]).
    /// A folded convolution exports an identity batch norm carrying its bias.
    pub fn export(&self, conv: &str, bn: &str, out: &mut Vec<(String, HostTensor)>) {
        let weight = host_tensor(self.conv.weight.val());
        let bias = self.conv.bias.as_ref().map(|b| host_tensor(b.val()));
        let c = weight.shape[0];
        out.push((format!("{conv}.weight"), weight));
        match (&self.bn, bias) {
            (Some(b), _) => {
                out.push((format!("{bn}.weight"), host_tensor(b.gamma.val())));
                out.push((format!("{bn}.bias"), host_tensor(b.beta.val())));
                out.push((format!("{bn}.running_mean"), host_tensor(b.running_mean.value())));
                out.push((format!("{bn}.running_var"), host_tensor(b.running_var.value())));
            }
            (None, bias) => {
                let filled = |v: f32| HostTensor { shape: vec![c], dtype: DType::F32, data: vec![v; c] };
                out.push((format!("{bn}.weight"), filled(1.0)));
                out.push((format!("{bn}.bias"), bias.unwrap_or_else(|| filled(0.0))));
                out.push((format!("{bn}.running_mean"), filled(0.0)));
                // var + ε = 1 exactly: the identity.
                out.push((format!("{bn}.running_var"), filled(1.0 - 1e-5)));
            }
        }
    }
}

/// A tensor's values on the host, f32 (synchronous: native use only).
pub(crate) fn host_tensor<const D: usize>(t: Tensor<D>) -> HostTensor {
    let shape = t.dims().to_vec();
    let data = t.into_data().try_to_vec::<f32>().unwrap_or_default();
    HostTensor { shape, dtype: DType::F32, data }
}

/// A residual block: its convolutions with ReLU between them, plus the shortcut
/// (a strided 1×1 `downsample` where the shape changes).
///
/// Basic (ResNet-18/34): 3×3, 3×3. Bottleneck (ResNet-50 and up): 1×1, 3×3 (strided,
/// grouped), 1×1 expanding 4×.
#[derive(Module, Debug)]
pub struct Block {
    pub convs: Vec<ConvBn>,
    pub downsample: Option<ConvBn>,
}

impl Block {
    /// `prefix` is the torchvision name of the block (`layer2.0`).
    pub fn build(
        specs: &[ConvSpec],
        downsample: Option<ConvSpec>,
        prefix: &str,
        src: &mut dyn ParamSource,
    ) -> Result<Self, Error> {
        let convs = specs
            .iter()
            .enumerate()
            .map(|(i, s)| ConvBn::build(*s, &format!("{prefix}.conv{}", i + 1), &format!("{prefix}.bn{}", i + 1), src))
            .collect::<Result<_, _>>()?;
        let downsample = downsample
            .map(|s| ConvBn::build(s, &format!("{prefix}.downsample.0"), &format!("{prefix}.downsample.1"), src))
            .transpose()?;
        Ok(Block { convs, downsample })
    }

    /// [`ConvBn::fold`] on every convolution.
    pub fn fold(self) -> Self {
        self.map(ConvBn::fold)
    }

    /// [`ConvBn::pack`] on every convolution.
    pub fn pack(self) -> Self {
        self.map(ConvBn::pack)
    }

    fn map(self, f: fn(ConvBn) -> ConvBn) -> Self {
        Block { convs: self.convs.into_iter().map(f).collect(), downsample: self.downsample.map(f) }
    }

    /// This packed block for [`gradient::Net`].
    pub fn gradient_block(&self) -> Option<gradient::Block> {
        let convs = self.convs.iter().map(ConvBn::gradient_layer).collect::<Option<_>>()?;
        let downsample = match &self.downsample {
            Some(d) => Some(d.gradient_layer()?),
            None => None,
        };
        Some(gradient::Block { convs, downsample })
    }

    /// Host copies of the parameters, `prefix` being the block's torchvision name.
    pub fn export(&self, prefix: &str, out: &mut Vec<(String, HostTensor)>) {
        for (i, c) in self.convs.iter().enumerate() {
            c.export(&format!("{prefix}.conv{}", i + 1), &format!("{prefix}.bn{}", i + 1), out);
        }
        if let Some(d) = &self.downsample {
            d.export(&format!("{prefix}.downsample.0"), &format!("{prefix}.downsample.1"), out);
        }
    }

    /// `[N, C_in, H, W]` → `[N, C_out, H / stride, W / stride]`, post-ReLU.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => d.forward(x.clone()),
            None => x.clone(),
        };
        let last = self.convs.len() - 1;
        // Moved, not cloned, into the last convolution: on the CPU kernels it then takes the
        // shortcut's buffer for its output.
        let mut identity = Some(identity);
        let mut out = x;
        for (i, conv) in self.convs.iter().enumerate() {
            out = conv.forward_fused(out, if i == last { identity.take() } else { None }, true);
        }
        out
    }
}
