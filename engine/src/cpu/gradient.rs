//! The input gradient of one `layer4` feature of a ResNet on the engine's CPU kernels: the
//! feature attack's step without an autodiff graph.
//!
//! The forward pass keeps every activation, channels-last. The backward pass runs each
//! convolution's input gradient on the same kernels:
//! - stride 1: the gradient convolved with the transposed, flipped weights;
//! - strided (the stem, a stage's first strided convolution and its shortcut): the gradient times
//!   the transposed weights, `[pixels, k·k·c_in]` columns, folded back onto the input (col2im).
//!
//! A ReLU's mask is applied as a gradient is stored (the kernels' gate), and a block's shortcut
//! gradient is added in the same pass. The forward weights are the packed model's; the
//! transposed ones are packed when the network is built.

use super::conv::{self, Fusion, Nhwc, Residual, SharedMut, for_each_task};
use super::kernel::{Isa, NR};
use super::pack::{self, ConvGeometry};

/// A channels-last activation `[n, h, w, c]` (`n` is the pass's).
struct Act {
    data: Vec<f32>,
    h: usize,
    w: usize,
    c: usize,
}

impl Act {
    fn view(&self, n: usize) -> Nhwc<'_> {
        Nhwc { data: &self.data, n, h: self.h, w: self.w, c: self.c }
    }
}

/// One folded convolution (bias, square kernel, `pad = kernel / 2`), packed for its forward
/// pass and for its input gradient.
pub struct Layer {
    g: ConvGeometry,
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// The input gradient as a convolution: `c_out → c_in`, flipped (stride 1) or
    /// `c_out → k·k·c_in` columns, 1×1 (strided).
    back: ConvGeometry,
    back_weight: Vec<f32>,
    /// `[panels·NR]` zeros: a gradient has no bias.
    zeros: Vec<f32>,
}

impl Layer {
    /// `oihw`: `[c_out, c_in, k, k]`; `weight` and `bias`: the same convolution already packed
    /// for the forward pass ([`pack::pack`], [`pack::pad_bias`]); only the transpose is packed here.
    pub fn new(oihw: &[f32], weight: Vec<f32>, bias: Vec<f32>, g: ConvGeometry) -> Layer {
        let ConvGeometry { c_in, c_out, kernel: k, stride, pad } = g;
        assert_eq!(oihw.len(), c_out * c_in * k * k, "weights of {g:?}");
        assert_eq!(weight.len(), g.packed_len(), "packed weights of {g:?}");
        assert_eq!(bias.len(), g.panels() * NR, "padded bias of {g:?}");
        assert_eq!(2 * pad + 1, k, "the kernels pad by half the kernel");
        let mut moved = vec![0.0; oihw.len()];
        let back = if stride == 1 {
            // W'[ci, co, ky, kx] = W[co, ci, k−1−ky, k−1−kx].
            for (i, &v) in oihw.iter().enumerate() {
                let (co, ci, ky, kx) = (i / (c_in * k * k), i / (k * k) % c_in, i / k % k, i % k);
                moved[((ci * c_out + co) * k + k - 1 - ky) * k + k - 1 - kx] = v;
            }
            ConvGeometry { c_in: c_out, c_out: c_in, kernel: k, stride: 1, pad: k - 1 - pad }
        } else {
            // W'[(ky, kx, ci), co] = W[co, ci, ky, kx], as a 1×1 convolution's `[out, in]`.
            for (i, &v) in oihw.iter().enumerate() {
                let (co, ci, ky, kx) = (i / (c_in * k * k), i / (k * k) % c_in, i / k % k, i % k);
                moved[((ky * k + kx) * c_in + ci) * c_out + co] = v;
            }
            ConvGeometry { c_in: c_out, c_out: k * k * c_in, kernel: 1, stride: 1, pad: 0 }
        };
        Layer { weight, bias, back_weight: pack::pack(&moved, &back), zeros: vec![0.0; back.panels() * NR], g, back }
    }

    /// `relu?(conv(x) + residual?)`.
    fn forward(&self, isa: Isa, x: &Act, n: usize, residual: Option<&[f32]>, relu: bool) -> Act {
        let residual = residual.map_or(Residual::None, Residual::Separate);
        let data = conv::conv(isa, x.view(n), &self.g, &self.weight, &self.bias, Fusion { residual, relu, gate: None });
        Act { data, h: self.g.out_side(x.h), w: self.g.out_side(x.w), c: self.g.c_out }
    }

    /// The gradient with respect to this convolution's input (`h × w`), given the one with
    /// respect to its output `dy`, plus `residual`, zero where `gate` is not above zero.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        isa: Isa,
        dy: &Act,
        n: usize,
        (h, w): (usize, usize),
        residual: Option<&[f32]>,
        gate: Option<&[f32]>,
    ) -> Act {
        let (back, zeros) = (&self.back, &self.zeros);
        let data = if self.g.stride == 1 {
            debug_assert_eq!((back.out_side(dy.h), back.out_side(dy.w)), (h, w));
            let residual = residual.map_or(Residual::None, Residual::Separate);
            conv::conv(isa, dy.view(n), back, &self.back_weight, zeros, Fusion { residual, relu: false, gate })
        } else {
            let columns = conv::conv(isa, dy.view(n), back, &self.back_weight, zeros, Fusion::default());
            col2im(&columns, &self.g, n, (h, w), (dy.h, dy.w), residual, gate)
        };
        Act { data, h, w, c: self.g.c_in }
    }
}

/// Sums each input value's share of the columns (`[n·ho·wo, k·k·c_in]`, `(ky, kx, ci)` order)
/// into `[n, h, w, c_in]`, plus `residual`, zero where `gate` is not above zero.
fn col2im(
    columns: &[f32],
    g: &ConvGeometry,
    n: usize,
    (h, w): (usize, usize),
    (ho, wo): (usize, usize),
    residual: Option<&[f32]>,
    gate: Option<&[f32]>,
) -> Vec<f32> {
    let (k, c) = (g.kernel, g.c_in);
    let depth = k * k * c;
    debug_assert_eq!(columns.len(), n * ho * wo * depth);
    let row = w * c;
    let mut out = vec![0.0f32; n * h * row];
    let out_ptr = SharedMut(out.as_mut_ptr());
    // The output index `o` that input index `i` meets through tap `t`, if any.
    let source = |i: usize, t: usize, outs: usize| {
        let at = (i + g.pad).checked_sub(t)?;
        (at % g.stride == 0 && at / g.stride < outs).then_some(at / g.stride)
    };
    for_each_task(n * h, |task, _| {
        let (b, iy) = (task / h, task % h);
        // SAFETY: task `task` alone writes output row `task` (`row` floats).
        let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(task * row), row) };
        for ky in 0..k {
            let Some(oy) = source(iy, ky, ho) else { continue };
            for (ix, d) in dst.chunks_exact_mut(c).enumerate() {
                for kx in 0..k {
                    let Some(ox) = source(ix, kx, wo) else { continue };
                    let src = &columns[((b * ho + oy) * wo + ox) * depth + (ky * k + kx) * c..][..c];
                    d.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                }
            }
        }
        if let Some(r) = residual {
            dst.iter_mut().zip(&r[task * row..][..row]).for_each(|(d, r)| *d += r);
        }
        if let Some(gate) = gate {
            dst.iter_mut().zip(&gate[task * row..][..row]).for_each(|(d, g)| *d = if *g > 0.0 { *d } else { 0.0 });
        }
    });
    out
}

/// torchvision's max pool after the stem: kernel, stride, padding.
const MAX_POOL: (usize, usize, usize) = (3, 2, 1);

/// The gradient with respect to the [`MAX_POOL`]'s input `x`, given the one with respect to its
/// output `dy`: each output's gradient goes to the first maximum of its window (PyTorch's
/// choice).
fn max_pool_backward(x: &Act, n: usize, dy: &Act) -> Act {
    let (kernel, stride, pad) = MAX_POOL;
    let c = x.c;
    let image = x.h * x.w * c;
    let mut out = vec![0.0f32; n * image];
    let out_ptr = SharedMut(out.as_mut_ptr());
    for_each_task(n, |b, _| {
        // SAFETY: task `b` alone writes image `b`.
        let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(b * image), image) };
        let src = &x.data[b * image..][..image];
        let mut best = vec![(f32::NEG_INFINITY, 0usize); c];
        for oy in 0..dy.h {
            for ox in 0..dy.w {
                best.fill((f32::NEG_INFINITY, 0));
                for ky in 0..kernel {
                    let Some(iy) = (oy * stride + ky).checked_sub(pad).filter(|&iy| iy < x.h) else { continue };
                    for kx in 0..kernel {
                        let Some(ix) = (ox * stride + kx).checked_sub(pad).filter(|&ix| ix < x.w) else { continue };
                        let at = (iy * x.w + ix) * c;
                        for (ch, (bv, bi)) in best.iter_mut().enumerate() {
                            if src[at + ch] > *bv {
                                *bv = src[at + ch];
                                *bi = at + ch;
                            }
                        }
                    }
                }
                let grad = &dy.data[((b * dy.h + oy) * dy.w + ox) * c..][..c];
                for (&(_, i), &gv) in best.iter().zip(grad) {
                    dst[i] += gv;
                }
            }
        }
    });
    Act { data: out, h: x.h, w: x.w, c }
}

/// A residual block: its convolutions, each but the last through a ReLU, the last plus the
/// shortcut (`downsample`, or the input itself) through a ReLU.
pub struct Block {
    pub convs: Vec<Layer>,
    pub downsample: Option<Layer>,
}

/// A folded ResNet up to `layer4` on the CPU kernels.
pub struct Net {
    pub isa: Isa,
    /// Input normalization after clamping to [0, 1].
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub stem: Layer,
    /// The [`MAX_POOL`] after the stem (torchvision's stem).
    pub max_pool: bool,
    pub blocks: Vec<Block>,
}

/// One feature's values and their input gradient.
pub struct FeatureGradient {
    /// `[n]`: the feature (the mean of its `layer4` map) per image.
    pub values: Vec<f32>,
    /// `[n, 3, h, w]`: its gradient with respect to each image.
    pub gradient: Vec<f32>,
}

impl Net {
    /// `images`: `[n, 3, h, w]`. The gradient of `feature`'s value with respect to each image,
    /// as autodiff computes it through the model's clamp, normalization and ReLUs.
    pub fn feature_gradient(
        &self,
        images: &[f32],
        n: usize,
        (h, w): (usize, usize),
        feature: usize,
    ) -> FeatureGradient {
        assert_eq!(images.len(), n * 3 * h * w, "images of {n} × 3 × {h} × {w}");
        let isa = self.isa;
        let plane = h * w;
        let mut x = vec![0.0f32; n * plane * 3];
        for (i, &v) in images.iter().enumerate() {
            let (b, ch, p) = (i / (3 * plane), i / plane % 3, i % plane);
            x[(b * plane + p) * 3 + ch] = (v.clamp(0.0, 1.0) - self.mean[ch]) / self.std[ch];
        }
        let x = Act { data: x, h, w, c: 3 };

        // Forward, keeping every activation: the stem's, the pool's, then each block's.
        let stem = self.stem.forward(isa, &x, n, None, true);
        let pooled = self.max_pool.then(|| {
            let (kernel, stride, pad) = MAX_POOL;
            let (data, ph, pw) = conv::max_pool(stem.view(n), kernel, stride, pad);
            Act { data, h: ph, w: pw, c: stem.c }
        });
        let first = pooled.as_ref().unwrap_or(&stem);
        let mut blocks: Vec<Vec<Act>> = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let input = blocks.last().and_then(|acts| acts.last()).unwrap_or(first);
            let shortcut = block.downsample.as_ref().map(|d| d.forward(isa, input, n, None, false));
            let residual = shortcut.as_ref().unwrap_or(input);
            let mut acts: Vec<Act> = Vec::with_capacity(block.convs.len());
            for (i, layer) in block.convs.iter().enumerate() {
                let src = acts.last().unwrap_or(input);
                let last = i + 1 == block.convs.len();
                let out = layer.forward(isa, src, n, last.then_some(&residual.data[..]), true);
                acts.push(out);
            }
            blocks.push(acts);
        }

        // The feature: the mean of its map; its gradient there, through the last ReLU.
        let top = blocks.last().and_then(|acts| acts.last()).unwrap_or(first);
        assert!(feature < top.c, "feature {feature} of {}", top.c);
        let cells = top.h * top.w;
        let mut values = vec![0.0f32; n];
        let mut dy = vec![0.0f32; top.data.len()];
        for (b, value) in values.iter_mut().enumerate() {
            for p in 0..cells {
                let at = (b * cells + p) * top.c + feature;
                *value += top.data[at];
                dy[at] = if top.data[at] > 0.0 { 1.0 / cells as f32 } else { 0.0 };
            }
            *value /= cells as f32;
        }
        let mut dy = Act { data: dy, h: top.h, w: top.w, c: top.c };

        // Backward, block by block from the last; `dy` is always past the block output's ReLU.
        while let Some(acts) = blocks.pop() {
            let block = &self.blocks[blocks.len()];
            let input = blocks.last().and_then(|acts| acts.last()).unwrap_or(first);
            let mut inner: Option<Act> = None;
            for i in (1..block.convs.len()).rev() {
                let before = &acts[i - 1];
                let dz = inner.as_ref().unwrap_or(&dy);
                let g = block.convs[i].backward(isa, dz, n, (before.h, before.w), None, Some(&before.data));
                inner = Some(g);
            }
            let shortcut = block.downsample.as_ref().map(|d| d.backward(isa, &dy, n, (input.h, input.w), None, None));
            let residual = shortcut.as_ref().unwrap_or(&dy);
            let dz = inner.as_ref().unwrap_or(&dy);
            // The input is post-ReLU (a block's output, the stem's or the pool of it): its mask.
            let g = block.convs[0].backward(isa, dz, n, (input.h, input.w), Some(&residual.data), Some(&input.data));
            dy = g;
        }
        if self.max_pool {
            dy = max_pool_backward(&stem, n, &dy);
        }
        let dx = self.stem.backward(isa, &dy, n, (h, w), None, None);

        // Through the normalization and the clamp (which passes gradients on [0, 1], ends included).
        let mut gradient = vec![0.0f32; images.len()];
        for (i, (g, &v)) in gradient.iter_mut().zip(images).enumerate() {
            let (b, ch, p) = (i / (3 * plane), i / plane % 3, i % plane);
            if (0.0..=1.0).contains(&v) {
                *g = dx.data[(b * plane + p) * 3 + ch] / self.std[ch];
            }
        }
        FeatureGradient { values, gradient }
    }
}
