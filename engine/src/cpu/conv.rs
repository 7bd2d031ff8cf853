//! Convolution on NHWC activations with packed weights: a 1×1 convolution reads its input in
//! place, any other gathers its patches block by block (no im2col matrix), every block's
//! bias, residual and ReLU are applied in registers, and the work is split across threads by
//! blocks of output pixels and, when there are few pixels (batch 1, late layers), of channels.

use super::kernel::{self, Epilogue, Isa, MR, NR};
use super::pack::ConvGeometry;

/// Output pixels per block: a block's gathered patches stay in the L2 cache.
const MC: usize = 8 * MR;
/// Floats of patches gathered once for all tasks at most (16 MB).
const SHARED_MAX: usize = 4 << 20;
/// Depth of one slice of `K` (the gathered block and one weight panel slice fit L2 and L1).
const KC_MAX: usize = 384;

/// An activation `[n, h, w, c]`, contiguous.
#[derive(Clone, Copy)]
pub struct Nhwc<'a> {
    pub data: &'a [f32],
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

/// Where the residual (`[n, ho, wo, c_out]`) comes from.
#[derive(Clone, Copy, Default)]
pub enum Residual<'a> {
    #[default]
    None,
    Separate(&'a [f32]),
    /// Already in the output buffer: the result overwrites it (the block's shortcut is not
    /// needed after its last convolution, so its buffer is reused).
    InOutput,
}

/// What happens to each output value after the product and the bias, in this order.
#[derive(Clone, Copy, Default)]
pub struct Fusion<'a> {
    /// Added (a residual block's shortcut).
    pub residual: Residual<'a>,
    pub relu: bool,
    /// `[n, ho, wo, c_out]`: the result is zero where this is not above zero (a ReLU's mask,
    /// applied to a gradient, [`super::gradient`]).
    pub gate: Option<&'a [f32]>,
}

/// `x` convolved with the packed weights, plus the padded bias, then `fusion`:
/// `[n, ho, wo, c_out]`, contiguous, in a new buffer.
pub fn conv(isa: Isa, x: Nhwc, g: &ConvGeometry, packed: &[f32], bias: &[f32], fusion: Fusion) -> Vec<f32> {
    assert!(!matches!(fusion.residual, Residual::InOutput), "a new buffer holds no residual");
    let len = x.n * g.out_side(x.h) * g.out_side(x.w) * g.c_out;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    conv_into(isa, x, g, packed, bias, fusion, out.spare_capacity_mut());
    // SAFETY: the first slice of K (`accumulate: false`) stored every row < m and column < c_out.
    unsafe { out.set_len(len) };
    out
}

/// [`conv`] into `out` (`[n, ho, wo, c_out]`), which holds the residual when it is
/// [`Residual::InOutput`] and may be uninitialized otherwise; every value is written.
pub fn conv_into(
    isa: Isa,
    x: Nhwc,
    g: &ConvGeometry,
    packed: &[f32],
    bias: &[f32],
    fusion: Fusion,
    out: &mut [std::mem::MaybeUninit<f32>],
) {
    assert_eq!(x.c, g.c_in, "input channels");
    assert_eq!(x.data.len(), x.n * x.h * x.w * x.c, "input size");
    assert_eq!(packed.len(), g.packed_len(), "packed weights");
    assert_eq!(bias.len(), g.panels() * NR, "padded bias");
    let (ho, wo) = (g.out_side(x.h), g.out_side(x.w));
    let m = x.n * ho * wo;
    assert_eq!(out.len(), m * g.c_out, "output size");
    let Fusion { residual, relu, gate } = fusion;
    if let Residual::Separate(r) = residual {
        assert_eq!(r.len(), m * g.c_out, "residual size");
    }
    if let Some(gate) = gate {
        assert_eq!(gate.len(), m * g.c_out, "gate size");
    }
    let onto_output = matches!(residual, Residual::InOutput);
    let depth = g.depth();
    let kc = depth.div_ceil(depth.div_ceil(KC_MAX));
    let panels = g.panels();
    let m_blocks = m.div_ceil(MC);
    // Enough tasks that threads finish together: split the channels when pixels are few.
    let want = 16 * threads();
    let per_group = panels.div_ceil(want.div_ceil(m_blocks).clamp(1, panels));
    let groups = panels.div_ceil(per_group);
    let out_ptr = SharedMut(out.as_mut_ptr().cast::<f32>());
    // A 1×1 convolution's rows of A are the input's pixels: read where they lie.
    let direct = g.kernel == 1 && g.stride == 1 && g.pad == 0;
    let res_ptr = if let Residual::Separate(r) = residual { r.as_ptr() as usize } else { 0 };
    let gate_ptr = gate.map_or(0, |g| g.as_ptr() as usize);
    // When the channels are split, the tasks of one pixel block would gather the same patches:
    // gather them once, up front, while that is small (the last layers, small batches).
    let shared = (groups > 1 && !direct && m_blocks * MC * depth <= SHARED_MAX).then(|| {
        let mut a = vec![0.0f32; m_blocks * MC * depth];
        let a_ptr = SharedMut(a.as_mut_ptr());
        for_each_task(m.div_ceil(MR), |i, _| {
            // SAFETY: task `i` alone writes micro-panel `i` (MR rows of `depth`), inside `a`.
            let dst = unsafe { std::slice::from_raw_parts_mut(a_ptr.get().add(i * MR * depth), MR * depth) };
            gather(x, g, ho, wo, i * MR, m, 0, depth, dst);
        });
        a
    });
    let task = |t: usize, buf: &mut Vec<f32>| {
        let (mb, group) = (t / groups, t % groups);
        let (m0, m1) = (mb * MC, ((mb + 1) * MC).min(m));
        let micro = (m1 - m0).div_ceil(MR);
        let panel_range = group * per_group..((group + 1) * per_group).min(panels);
        let mut k0 = 0;
        while k0 < depth {
            let kl = kc.min(depth - k0);
            if buf.len() < micro * MR * kl {
                buf.resize(micro * MR * kl, 0.0);
            }
            if shared.is_none() {
                for i in 0..micro {
                    let first = m0 + i * MR;
                    if !direct || first + MR > m {
                        gather(x, g, ho, wo, first, m1, k0, kl, &mut buf[i * MR * kl..(i + 1) * MR * kl]);
                    }
                }
            }
            for p in panel_range.clone() {
                let b = packed[(p * depth + k0) * NR..].as_ptr();
                let cols = NR.min(g.c_out - p * NR);
                for i in 0..micro {
                    let row = m0 + i * MR;
                    let at = row * g.c_out + p * NR;
                    let rows_at =
                        |ptr: usize| if ptr == 0 { std::ptr::null() } else { (ptr as *const f32).wrapping_add(at) };
                    let ep = Epilogue {
                        accumulate: k0 > 0 || onto_output,
                        last: k0 + kl == depth,
                        bias: bias[p * NR..].as_ptr(),
                        residual: rows_at(res_ptr),
                        relu,
                        gate: rows_at(gate_ptr),
                    };
                    let (a, lda) = if let Some(a) = &shared {
                        (a[row * depth + k0..].as_ptr(), depth)
                    } else if direct && row + MR <= m {
                        (x.data[row * g.c_in + k0..].as_ptr(), g.c_in)
                    } else {
                        (buf[i * MR * kl..].as_ptr(), kl)
                    };
                    // SAFETY: the block's rows `row..row + MR.min(m1 - row)` and columns
                    // `p·NR..p·NR + cols` lie inside `out` (and the residual and gate, of its shape);
                    // no other task writes them (tasks own disjoint pixel blocks × panel groups);
                    // `a` holds MR rows of `kl` floats at stride `lda` (the input's own pixels
                    // when whole, else the gathered block), the panel `kl·NR` floats.
                    unsafe {
                        kernel::run(isa, kl, a, lda, b, out_ptr.get().add(at), g.c_out, MR.min(m1 - row), cols, ep)
                    };
                }
            }
            k0 += kl;
        }
    };
    for_each_task(m_blocks * groups, task);
}

/// Gathers the patches of output pixels `first..first + MR` (those ≥ `end` are zero) over
/// `K` indices `k0..k0 + kl` into `dst`, `MR` rows of `kl`.
#[allow(clippy::too_many_arguments)]
fn gather(
    x: Nhwc,
    g: &ConvGeometry,
    ho: usize,
    wo: usize,
    first: usize,
    end: usize,
    k0: usize,
    kl: usize,
    dst: &mut [f32],
) {
    for (r, row) in dst.chunks_exact_mut(kl).enumerate() {
        let pixel = first + r;
        if pixel >= end {
            row.fill(0.0);
            continue;
        }
        let (b, oy, ox) = (pixel / (ho * wo), pixel / wo % ho, pixel % wo);
        // K runs over rows of taps (ky), each `kernel·c_in` values that lie side by side in
        // the input where the row is inside it: one copy per row, per tap at the borders.
        let span = g.kernel * g.c_in;
        let mut k = k0;
        while k < k0 + kl {
            let (ky, within) = (k / span, k % span);
            let run = (span - within).min(k0 + kl - k);
            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
            let out = &mut row[k - k0..k - k0 + run];
            let ix0 = (ox * g.stride) as isize - g.pad as isize;
            let (first_ix, last_ix) = (ix0 + (within / g.c_in) as isize, ix0 + ((within + run - 1) / g.c_in) as isize);
            if iy < 0 || iy as usize >= x.h {
                out.fill(0.0);
            } else if first_ix >= 0 && (last_ix as usize) < x.w {
                let row_start = ((b * x.h + iy as usize) * x.w * x.c) as isize;
                let at = (row_start + ix0 * x.c as isize + within as isize) as usize;
                out.copy_from_slice(&x.data[at..at + run]);
            } else {
                for (j, v) in out.iter_mut().enumerate() {
                    let ix = ix0 + ((within + j) / g.c_in) as isize;
                    *v = if ix >= 0 && (ix as usize) < x.w {
                        x.data[((b * x.h + iy as usize) * x.w + ix as usize) * x.c + (within + j) % g.c_in]
                    } else {
                        0.0
                    };
                }
            }
            k += run;
        }
    }
}

/// Max pooling `kernel × kernel`, stride and padding (padding never wins), NHWC in and out.
pub fn max_pool(x: Nhwc, kernel: usize, stride: usize, pad: usize) -> (Vec<f32>, usize, usize) {
    let ho = (x.h + 2 * pad - kernel) / stride + 1;
    let wo = (x.w + 2 * pad - kernel) / stride + 1;
    let row = wo * x.c;
    let mut out = vec![f32::NEG_INFINITY; x.n * ho * row];
    let out_ptr = SharedMut(out.as_mut_ptr());
    for_each_task(x.n * ho, |t, _| {
        let (b, oy) = (t / ho, t % ho);
        // SAFETY: task `t` alone writes output row `t` (`row` floats).
        let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(t * row), row) };
        for ky in 0..kernel {
            let iy = (oy * stride + ky) as isize - pad as isize;
            if iy < 0 || iy as usize >= x.h {
                continue;
            }
            let src = &x.data[(b * x.h + iy as usize) * x.w * x.c..][..x.w * x.c];
            for ox in 0..wo {
                let d = &mut dst[ox * x.c..(ox + 1) * x.c];
                for kx in 0..kernel {
                    let ix = (ox * stride + kx) as isize - pad as isize;
                    if ix < 0 || ix as usize >= x.w {
                        continue;
                    }
                    for (d, s) in d.iter_mut().zip(&src[ix as usize * x.c..(ix as usize + 1) * x.c]) {
                        *d = d.max(*s);
                    }
                }
            }
        }
    });
    (out, ho, wo)
}

/// A pointer the tasks write through, each to its own part.
#[derive(Clone, Copy)]
pub(super) struct SharedMut(pub(super) *mut f32);
// SAFETY: every use writes disjoint parts (see the callers).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(target_arch = "wasm32")]
fn threads() -> usize {
    1
}

/// Runs `task(0..count)` on the thread pool, each thread with its own scratch buffer.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn for_each_task(count: usize, task: impl Fn(usize, &mut Vec<f32>) + Sync + Send) {
    use rayon::prelude::*;
    (0..count).into_par_iter().for_each_init(Vec::new, |buf, t| task(t, buf));
}

#[cfg(target_arch = "wasm32")]
pub(super) fn for_each_task(count: usize, task: impl Fn(usize, &mut Vec<f32>)) {
    let mut buf = Vec::new();
    (0..count).for_each(|t| task(t, &mut buf));
}

#[cfg(test)]
mod tests {
    use super::super::pack::{pack, pad_bias};
    use super::*;

    /// Direct convolution in f64, OIHW weights, NHWC activations.
    fn reference(x: Nhwc, w: &[f32], bias: &[f32], g: &ConvGeometry, residual: Option<&[f32]>, relu: bool) -> Vec<f32> {
        let (ho, wo) = (g.out_side(x.h), g.out_side(x.w));
        let mut out = Vec::new();
        for b in 0..x.n {
            for oy in 0..ho {
                for ox in 0..wo {
                    for o in 0..g.c_out {
                        let mut s = bias[o] as f64;
                        for ci in 0..g.c_in {
                            for ky in 0..g.kernel {
                                for kx in 0..g.kernel {
                                    let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy as usize >= x.h || ix as usize >= x.w {
                                        continue;
                                    }
                                    let xv = x.data[((b * x.h + iy as usize) * x.w + ix as usize) * x.c + ci];
                                    s += xv as f64 * w[((o * g.c_in + ci) * g.kernel + ky) * g.kernel + kx] as f64;
                                }
                            }
                        }
                        let at = out.len();
                        s += residual.map_or(0.0, |r| r[at] as f64);
                        out.push(if relu { s.max(0.0) } else { s } as f32);
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_a_direct_convolution_on_every_shape_kind() {
        let kernels: Vec<Isa> = Isa::ALL.into_iter().filter(|isa| isa.is_supported()).collect();
        let expected = cfg!(any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            all(target_arch = "wasm32", target_feature = "simd128")
        ));
        assert!(!kernels.is_empty() || !expected, "no CPU kernel on this x86-64, ARM64 or wasm SIMD machine");
        for isa in kernels {
            matches_a_direct_convolution(isa);
        }
    }

    fn matches_a_direct_convolution(isa: Isa) {
        // (n, h, w, c_in, c_out, kernel, stride, pad, residual, relu): the ResNet kinds (7×7/2
        // stem, 3×3, strided 3×3, 1×1, strided 1×1), odd sizes that leave partial blocks and
        // panels, and depths that take several slices of K.
        let cases = [
            (2, 15, 13, 3, 8, 7, 2, 3, false, true),
            (1, 9, 11, 16, 40, 3, 1, 1, false, true),
            (3, 10, 10, 24, 33, 3, 2, 1, false, false),
            (2, 7, 7, 100, 70, 1, 1, 0, true, true),
            (1, 8, 9, 48, 64, 1, 2, 0, false, false),
            (1, 5, 5, 96, 32, 3, 1, 1, true, true),
            (1, 4, 4, 520, 20, 1, 1, 0, false, true),
            (2, 6, 7, 48, 40, 3, 1, 1, true, true),
            (1, 7, 7, 400, 64, 1, 1, 0, true, true),
            (1, 9, 9, 64, 32, 3, 2, 1, false, true),
        ];
        for (i, &(n, h, w, c_in, c_out, kernel, stride, pad, res, relu)) in cases.iter().enumerate() {
            let g = ConvGeometry { c_in, c_out, kernel, stride, pad };
            let data = values(n * h * w * c_in, i as u32);
            let x = Nhwc { data: &data, n, h, w, c: c_in };
            let weights = values(c_out * c_in * kernel * kernel, 100 + i as u32);
            let bias = values(c_out, 200 + i as u32);
            let out_len = n * g.out_side(h) * g.out_side(w) * c_out;
            let residual = res.then(|| values(out_len, 300 + i as u32));
            let (packed, padded) = (pack(&weights, &g), pad_bias(&bias, &g));
            let fusion =
                Fusion { residual: residual.as_deref().map_or(Residual::None, Residual::Separate), relu, gate: None };
            let got = conv(isa, x, &g, &packed, &padded, fusion);
            let want = reference(x, &weights, &bias, &g, residual.as_deref(), relu);
            if let Some(r) = &residual {
                // The same with the residual in the output buffer.
                let mut out: Vec<std::mem::MaybeUninit<f32>> =
                    r.iter().map(|&v| std::mem::MaybeUninit::new(v)).collect();
                conv_into(isa, x, &g, &packed, &padded, Fusion { residual: Residual::InOutput, ..fusion }, &mut out);
                // SAFETY: conv_into writes every value.
                let in_output: Vec<f32> = out.into_iter().map(|v| unsafe { v.assume_init() }).collect();
                for (j, (a, b)) in in_output.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{isa:?} case {i} in place, value {j}: {a} vs {b}"
                    );
                }
            }
            // The same with a gate: zero wherever it is not above zero.
            let gate = values(out_len, 400 + i as u32);
            let gated = conv(isa, x, &g, &packed, &padded, Fusion { gate: Some(&gate), ..fusion });
            for (j, ((a, b), gv)) in gated.iter().zip(&want).zip(&gate).enumerate() {
                let b = if *gv > 0.0 { *b } else { 0.0 };
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{isa:?} case {i} gated, value {j}: {a} vs {b}");
            }
            assert_eq!(got.len(), want.len(), "case {i}");
            for (j, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{isa:?} case {i}, value {j}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn max_pool_ignores_padding() {
        let data = values(2 * 5 * 6 * 3, 9).iter().map(|v| v - 2.0).collect::<Vec<_>>();
        let x = Nhwc { data: &data, n: 2, h: 5, w: 6, c: 3 };
        let (got, ho, wo) = max_pool(x, 3, 2, 1);
        assert_eq!((ho, wo), (3, 3));
        for b in 0..2 {
            for oy in 0..ho {
                for ox in 0..wo {
                    for c in 0..3 {
                        let mut m = f32::NEG_INFINITY;
                        for iy in (oy * 2).saturating_sub(1)..(oy * 2 + 2).min(5) {
                            for ix in (ox * 2).saturating_sub(1)..(ox * 2 + 2).min(6) {
                                m = m.max(data[((b * 5 + iy) * 6 + ix) * 3 + c]);
                            }
                        }
                        assert_eq!(got[((b * ho + oy) * wo + ox) * 3 + c], m);
                    }
                }
            }
        }
    }
}
