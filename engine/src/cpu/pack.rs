//! Convolution weights packed once, at load, into the microkernels' panels.
//!
//! A convolution with weights `W[c_out, c_in, kh, kw]` is the matrix product of its input's
//! patches (`[pixels, K]`, `K = kh·kw·c_in` ordered `(ky, kx, ci)`, the NHWC order) with
//! `B[K, c_out]`. Packed, `B` is `⌈c_out / NR⌉` panels of `[K][NR]`, zero-padded on the right,
//! so a microkernel streams its panel from memory in order.

use super::kernel::NR;

/// Geometry of one packed convolution (groups of 1, square kernel, same stride both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeometry {
    /// `K`: multiply-adds per output value.
    pub fn depth(&self) -> usize {
        self.kernel * self.kernel * self.c_in
    }

    /// Number of `NR`-wide panels.
    pub fn panels(&self) -> usize {
        self.c_out.div_ceil(NR)
    }

    /// Floats in the packed weights.
    pub fn packed_len(&self) -> usize {
        self.panels() * self.depth() * NR
    }

    /// Output side for an input side.
    pub fn out_side(&self, side: usize) -> usize {
        (side + 2 * self.pad - self.kernel) / self.stride + 1
    }
}

/// `[c_out, c_in, k, k]` (PyTorch's OIHW) → panels.
pub fn pack(oihw: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let (k, depth) = (g.kernel, g.depth());
    debug_assert_eq!(oihw.len(), g.c_out * g.c_in * k * k);
    let mut out = vec![0.0; g.packed_len()];
    for o in 0..g.c_out {
        let (panel, lane) = (o / NR, o % NR);
        for ci in 0..g.c_in {
            for ky in 0..k {
                for kx in 0..k {
                    let row = (ky * k + kx) * g.c_in + ci;
                    out[(panel * depth + row) * NR + lane] = oihw[((o * g.c_in + ci) * k + ky) * k + kx];
                }
            }
        }
    }
    out
}

/// The bias padded to whole panels.
pub fn pad_bias(bias: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let mut out = bias.to_vec();
    out.resize(g.panels() * NR, 0.0);
    out
}
