//! The seam to burn: [`CpuKernels`], a backend extension whose `flex` implementation runs
//! [`super::conv`] and whose default body (every other backend, autodiff included) composes
//! burn's own convolution, addition, ReLU and pooling from the same packed weights.
//!
//! Activations produced here are `[N, C, H, W]` tensors laid out channels-last (strides
//! `[H·W·C, 1, W·C, C]`): any burn operation reads them as usual, and the next packed
//! convolution takes them without a copy.

use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Bytes, DType, Flex, Shape, backend_extension};
use burn::tensor::{Slice, Tensor};
use burn_flex::{FlexTensor, Layout};

use super::conv::{self, Fusion, Nhwc, Residual};
use super::kernel::{Isa, NR};
use super::pack::ConvGeometry;

/// Operations the engine runs with its own CPU kernels where it has them.
#[backend_extension(Flex, Autodiff)]
pub trait CpuKernels: Backend {
    /// `relu?(conv(x, W) + bias)`. `x`: `[N, c_in, H, W]` in any layout; `weight`:
    /// [`super::pack::pack`]ed, `[panels·K·NR]`; `bias`: `[panels·NR]`. Out: `[N, c_out, H', W']`.
    #[allow(clippy::too_many_arguments)]
    fn packed_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> FloatTensor<Self> {
        composed_conv::<Self>(x, weight, bias, None, &geometry(c_in, c_out, kernel, stride), relu)
    }

    /// `relu?(conv(x, W) + bias + residual)`, `residual` of the output's shape: the last
    /// convolution of a residual block.
    #[allow(clippy::too_many_arguments)]
    fn packed_conv_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> FloatTensor<Self> {
        composed_conv::<Self>(x, weight, bias, Some(residual), &geometry(c_in, c_out, kernel, stride), relu)
    }

    /// Max pooling, `kernel × kernel`, stride and padding as given: `[N, C, H, W]` → `[N, C,
    /// H', W']`, keeping a channels-last input channels-last.
    fn max_pool(x: FloatTensor<Self>, kernel: usize, stride: usize, pad: usize) -> FloatTensor<Self> {
        Self::max_pool2d(x, [kernel, kernel], [stride, stride], [pad, pad], [1, 1], false)
    }
}

fn geometry(c_in: usize, c_out: usize, kernel: usize, stride: usize) -> ConvGeometry {
    ConvGeometry { c_in, c_out, kernel, stride, pad: kernel / 2 }
}

/// The packed convolution from burn's operations: the weights unpacked by views
/// (`[panels, K, NR]` → `[K, c_out]` → `[c_out, c_in, k, k]`), then `conv2d`, add, ReLU.
fn composed_conv<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    residual: Option<FloatTensor<B>>,
    g: &ConvGeometry,
    relu: bool,
) -> FloatTensor<B> {
    let (panels, depth, k) = (g.panels(), g.depth(), g.kernel);
    let w = B::float_reshape(weight, Shape::new([panels, depth, NR]));
    let w = B::float_permute(w, &[1, 0, 2]);
    let w = B::float_reshape(w, Shape::new([depth, panels * NR]));
    let w = B::float_slice(w, &[Slice::full(), Slice::from(0..g.c_out)]);
    let w = B::float_reshape(w, Shape::new([k, k, g.c_in, g.c_out]));
    let w = B::float_permute(w, &[3, 2, 0, 1]);
    let bias = B::float_slice(bias, &[Slice::from(0..g.c_out)]);
    let options = ConvOptions::new([g.stride; 2], [g.pad; 2], [1, 1], 1);
    let mut out = B::conv2d(x, w, Some(bias), options);
    if let Some(r) = residual {
        out = B::float_add(out, r);
    }
    if relu { B::relu(out) } else { out }
}

impl CpuKernels for Flex {
    fn packed_conv(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> FlexTensor {
        flex_conv(x, weight, bias, None, &geometry(c_in, c_out, kernel, stride), relu)
    }

    fn packed_conv_add(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        residual: FlexTensor,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> FlexTensor {
        flex_conv(x, weight, bias, Some(residual), &geometry(c_in, c_out, kernel, stride), relu)
    }

    fn max_pool(x: FlexTensor, kernel: usize, stride: usize, pad: usize) -> FlexTensor {
        if x.dtype() != DType::F32 || !is_channels_last(&x) {
            return Self::max_pool2d(x, [kernel, kernel], [stride, stride], [pad, pad], [1, 1], false);
        }
        let [n, c, h, w] = dims(&x);
        let x = channels_last(x);
        let (out, ho, wo) = conv::max_pool(Nhwc { data: f32s(&x), n, h, w, c }, kernel, stride, pad);
        channels_last_tensor(out, [n, c, ho, wo])
    }
}

/// The packed convolution on `flex`: the engine's kernel where the CPU has one, burn's
/// composition otherwise.
fn flex_conv(
    x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    residual: Option<FlexTensor>,
    g: &ConvGeometry,
    relu: bool,
) -> FlexTensor {
    let all_f32 = [&x, &weight, &bias].into_iter().chain(residual.as_ref()).all(|t| t.dtype() == DType::F32);
    let Some(isa) = Isa::detect().filter(|_| all_f32) else {
        return composed_conv::<Flex>(x, weight, bias, residual, g, relu);
    };
    let [n, _, h, w] = dims(&x);
    let (ho, wo) = (g.out_side(h), g.out_side(w));
    let x = channels_last(x);
    let input = Nhwc { data: f32s(&x), n, h, w, c: g.c_in };
    let (weight, bias) = (weight.to_contiguous(), bias.to_contiguous());
    let (weight, bias) = (f32s(&weight), f32s(&bias));
    match residual {
        // The block's shortcut, held by no one else: the result overwrites it in place.
        Some(mut r) if is_channels_last(&r) && r.layout().start_offset() == 0 && r.is_unique() => {
            let out = r.try_storage_mut::<f32>().expect("a unique tensor");
            let out = &mut out[..n * ho * wo * g.c_out];
            // SAFETY: f32 and MaybeUninit<f32> have the same layout; every value stays initialized.
            let out = unsafe { &mut *(out as *mut [f32] as *mut [std::mem::MaybeUninit<f32>]) };
            let fusion = Fusion { residual: Residual::InOutput, relu, gate: None };
            conv::conv_into(isa, input, g, weight, bias, fusion, out);
            r
        }
        residual => {
            let residual = residual.map(channels_last);
            let residual = residual.as_ref().map_or(Residual::None, |r| Residual::Separate(f32s(r)));
            let out = conv::conv(isa, input, g, weight, bias, Fusion { residual, relu, gate: None });
            channels_last_tensor(out, [n, g.c_out, ho, wo])
        }
    }
}

impl<B: Backend + CpuKernels, C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy> CpuKernels
    for Autodiff<B, C>
{
}

fn dims(x: &FlexTensor) -> [usize; 4] {
    let s = x.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// Whether `[N, C, H, W]` lies in memory as a dense `[N, H, W, C]`.
fn is_channels_last(x: &FlexTensor) -> bool {
    let [_, c, h, w] = dims(x);
    let want = [(h * w * c) as isize, 1, (w * c) as isize, c as isize];
    x.layout().strides() == want || c == 1 && x.is_contiguous()
}

/// `[N, C, H, W]` → the same values as a dense `[N, H, W, C]` tensor (a view when they
/// already lie so, a copy otherwise).
fn channels_last(x: FlexTensor) -> FlexTensor {
    x.permute(&[0, 2, 3, 1]).to_contiguous()
}

/// The values of a contiguous f32 tensor.
fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

/// `[n, h, w, c]` values as a `[n, c, h, w]` tensor laid out channels-last.
fn channels_last_tensor(values: Vec<f32>, [n, c, h, w]: [usize; 4]) -> FlexTensor {
    let layout = Layout::new(Shape::new([n, c, h, w]), vec![(h * w * c) as isize, 1, (w * c) as isize, c as isize], 0);
    FlexTensor::new(Bytes::from_elems(values), layout, DType::F32)
}

/// [`CpuKernels::packed_conv`] (or `packed_conv_add` with a residual) on tensors.
pub fn packed_conv(
    x: Tensor<4>,
    weight: Tensor<1>,
    bias: Tensor<1>,
    residual: Option<Tensor<4>>,
    g: &ConvGeometry,
    relu: bool,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    let (x, w, b) = (x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch());
    let (c_in, c_out, k, s) = (g.c_in, g.c_out, g.kernel, g.stride);
    Tensor::from_dispatch(match residual {
        None => <Dispatch as CpuKernels>::packed_conv(x, w, b, c_in, c_out, k, s, relu),
        Some(r) => <Dispatch as CpuKernels>::packed_conv_add(x, w, b, r.into_dispatch(), c_in, c_out, k, s, relu),
    })
}

/// [`CpuKernels::max_pool`] on tensors.
pub fn max_pool(x: Tensor<4>, kernel: usize, stride: usize, pad: usize) -> Tensor<4> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as CpuKernels>::max_pool(x.into_dispatch(), kernel, stride, pad))
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::relu;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Distribution, TensorData};

    use super::*;
    use crate::cpu::pack::{pack, pad_bias};

    /// Both arms of the extension against burn's `conv2d`: `flex` (the engine's kernel) on
    /// values, autodiff (burn's operations composed from the packed weights) on values and input
    /// gradients; every kind of ResNet convolution.
    #[test]
    fn both_arms_compute_burns_convolution() {
        for (kernel, stride) in [(3, 1), (3, 2), (1, 1), (1, 2), (7, 2)] {
            compare_with_burn(kernel, stride);
        }
    }

    fn compare_with_burn(k: usize, stride: usize) {
        let device = Device::flex();
        let g = ConvGeometry { c_in: 5, c_out: 40, kernel: k, stride, pad: k / 2 };
        let uniform = Distribution::Uniform(-1.0, 1.0);
        let w = Tensor::<4>::random([40, 5, k, k], uniform, &device);
        let b = Tensor::<1>::random([40], uniform, &device);
        let host = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        let packed_w = pack(&host(w.clone().reshape([40 * 5 * k * k])), &g);
        let packed_b = pad_bias(&host(b.clone()), &g);
        let tensor = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        let (packed_w, packed_b) = (tensor(packed_w), tensor(packed_b));
        let x = Tensor::<4>::random([2, 5, 9, 9], uniform, &device);
        let out = g.out_side(9);
        let r = Tensor::<4>::random([2, 40, out, out], uniform, &device);
        let options = ConvOptions::new([stride, stride], [k / 2, k / 2], [1, 1], 1);
        let burn_conv = |x: Tensor<4>| relu(conv2d(x, w.clone(), Some(b.clone()), options.clone()) + r.clone());
        let ours = |x: Tensor<4>| packed_conv(x, packed_w.clone(), packed_b.clone(), Some(r.clone()), &g, true);
        let max_diff = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
        assert!(max_diff(burn_conv(x.clone()), ours(x.clone())) < 1e-5, "{k}×{k}/{stride}");
        let grad = |f: &dyn Fn(Tensor<4>) -> Tensor<4>| {
            let t = x.clone().autodiff().require_grad();
            let y = f(t.clone());
            assert!(y.device().is_autodiff());
            let grads = (y.clone() * y).sum().backward();
            t.grad(&grads).unwrap()
        };
        let (ga, gb) = (grad(&burn_conv), grad(&ours));
        let scale: f32 = ga.clone().abs().max().into_scalar();
        let diff = max_diff(ga, gb);
        assert!(scale > 0.0 && diff <= 1e-5 * scale, "{k}×{k}/{stride}: gradients differ by {diff} (max {scale})");
    }
}
