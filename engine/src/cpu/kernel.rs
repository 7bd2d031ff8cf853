//! The matrix microkernels: a 12 × 32 block of `C = A·B` held in registers (AVX-512: the whole
//! block; AVX2: four 6 × 16 quarters of it), with the convolution's epilogue (bias, residual,
//! ReLU, a gradient's ReLU mask) applied before the one store.
//!
//! `A` is row-major with any row stride (one row per output pixel: the input itself for a 1×1
//! convolution, gathered patches otherwise, see [`super::conv`]), `B` a weight panel of
//! [`super::pack`] (`[k][NR]`, one panel per 32 output channels).
//! Which kernel runs is decided once, at run time, from the CPU ([`Isa::detect`]).

/// Rows of one microkernel block (output pixels).
pub const MR: usize = 12;
/// Columns of one microkernel block (output channels): two 16-lane vectors.
pub const NR: usize = 32;

/// The instruction set a kernel needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512F (Intel since Skylake-SP, AMD since Zen 4).
    Avx512,
    /// x86-64 with AVX2 and FMA (Intel since Haswell, AMD since Zen).
    Avx2,
    /// 64-bit ARM (Apple silicon, Graviton, Ampere): NEON is part of the architecture.
    Neon,
    /// WebAssembly SIMD (every current browser; the app is built with it).
    Simd128,
}

/// Chooses the kernels: `off`, or one by its [`Isa::name`] (if the CPU has it); unset, the best.
pub const ENV: &str = "SALIENT_CPU_KERNELS";

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Simd128];

    /// Its short name, for reports and [`ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::Simd128 => "simd128",
        }
    }

    /// Whether this CPU runs it.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            // Decided when the module is compiled: a browser without it does not load it.
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The kernels to run: the best this CPU supports, or the one [`ENV`] names; `None` where
    /// the engine has none or `SALIENT_CPU_KERNELS=off` (then convolutions stay on burn's own
    /// path: wasm without SIMD, x86-64 without AVX2, other architectures).
    pub fn detect() -> Option<Isa> {
        let chosen = std::env::var(ENV).ok();
        Isa::ALL.into_iter().filter(|isa| isa.is_supported()).find(|isa| match chosen.as_deref() {
            None | Some("") => true,
            Some(name) => isa.name() == name,
        })
    }
}

/// What happens to a finished block before it is stored, and where its inputs are.
#[derive(Clone, Copy)]
pub struct Epilogue {
    /// Add the values already in `C` (a later slice of `k`).
    pub accumulate: bool,
    /// The last slice of `k`: add the bias and residual, apply the ReLU.
    pub last: bool,
    /// `[NR]` bias of this block's columns (padded with zeros).
    pub bias: *const f32,
    /// Residual rows with `C`'s strides, or null.
    pub residual: *const f32,
    pub relu: bool,
    /// Rows with `C`'s strides, or null: where a value here is not above zero, the result is
    /// zero (a ReLU's mask, applied to a gradient).
    pub gate: *const f32,
}

impl Epilogue {
    /// The epilogue of the sub-block whose first value is `at` values into `C` (and the
    /// residual and gate), in column `col` of the block.
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "wasm32")), allow(dead_code))]
    fn shifted(self, at: usize, col: usize) -> Epilogue {
        let shift = |p: *const f32| if p.is_null() { p } else { p.wrapping_add(at) };
        Epilogue { bias: self.bias.wrapping_add(col), residual: shift(self.residual), gate: shift(self.gate), ..self }
    }

    /// One value of the block through the epilogue, one value at a time (the vector kernels'
    /// partial columns): `sum` for `C[at]`, in column `col`.
    ///
    /// # Safety
    /// `c`, the residual and the gate hold index `at`, the bias index `col`.
    #[cfg(any(target_arch = "aarch64", target_arch = "wasm32"))]
    unsafe fn scalar(&self, sum: f32, c: *const f32, at: usize, col: usize) -> f32 {
        unsafe {
            let mut v = sum;
            if self.accumulate {
                v += *c.add(at);
            }
            if self.last {
                v += *self.bias.add(col);
                if !self.residual.is_null() {
                    v += *self.residual.add(at);
                }
                if self.relu {
                    v = if v > 0.0 { v } else { 0.0 };
                }
                if !self.gate.is_null() {
                    v = if *self.gate.add(at) > 0.0 { v } else { 0.0 };
                }
            }
            v
        }
    }
}

/// `C[mr, nr] (+)= A[mr, k] · B[k, nr]`, then the epilogue. `a`: `MR` rows of `k` at stride
/// `lda`; `b`: `[k][NR]`; `c` and the residual: row stride `ldc`. Rows `mr..MR` of `a` are read
/// but not stored.
///
/// # Safety
/// `a` holds `MR` rows of `k` floats at stride `lda`, `b` `k·NR` floats, `bias` `NR`; `c` (and
/// the residual) hold `mr` rows of `nr` floats at stride `ldc`; the CPU has the kernel's
/// instruction set.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64", target_feature = "simd128")),
    allow(unused_variables)
)]
pub unsafe fn run(
    isa: Isa,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    ep: Epilogue,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::block(k, a, lda, b, c, ldc, mr, nr, ep) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::block(k, a, lda, b, c, ldc, mr, nr, ep) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { neon::block(k, a, lda, b, c, ldc, mr, nr, ep) },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => unsafe { simd128::block(k, a, lda, b, c, ldc, mr, nr, ep) },
        #[allow(unreachable_patterns)]
        _ => unreachable!("Isa::detect never returns {isa:?} here"),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Epilogue, NR};

    /// The 12 × 32 block as four 6 × 16 quarters (16 registers hold 12 accumulators, two rows
    /// of the panel and a broadcast).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        ep: Epilogue,
    ) {
        for r0 in [0, 6].into_iter().filter(|&r0| r0 < mr) {
            for c0 in [0, 16].into_iter().filter(|&c0| c0 < nr) {
                let ep = ep.shifted(r0 * ldc + c0, c0);
                unsafe {
                    quarter(
                        k,
                        a.add(r0 * lda),
                        lda,
                        b.add(c0),
                        c.add(r0 * ldc + c0),
                        ldc,
                        (mr - r0).min(6),
                        nr - c0,
                        ep,
                    )
                };
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn quarter(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        ep: Epilogue,
    ) {
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; 6];
            for p in 0..k {
                let b0 = _mm256_loadu_ps(b.add(p * NR));
                let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_set1_ps(*a.add(r * lda + p));
                    row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(av, b1, row[1]);
                }
            }
            let masks = [lane_mask(nr), lane_mask(nr.saturating_sub(8))];
            let zero = _mm256_setzero_ps();
            let bias = [_mm256_loadu_ps(ep.bias), _mm256_loadu_ps(ep.bias.add(8))];
            for (r, row) in acc.iter().enumerate().take(mr) {
                for (j, &(mask, any)) in masks.iter().enumerate() {
                    if !any {
                        continue;
                    }
                    let at = r * ldc + 8 * j;
                    let mut v = row[j];
                    if ep.accumulate {
                        v = _mm256_add_ps(v, _mm256_maskload_ps(c.add(at), mask));
                    }
                    if ep.last {
                        v = _mm256_add_ps(v, bias[j]);
                        if !ep.residual.is_null() {
                            v = _mm256_add_ps(v, _mm256_maskload_ps(ep.residual.add(at), mask));
                        }
                        if ep.relu {
                            v = _mm256_max_ps(v, zero);
                        }
                        if !ep.gate.is_null() {
                            let open = _mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_maskload_ps(ep.gate.add(at), mask), zero);
                            v = _mm256_and_ps(v, open);
                        }
                    }
                    _mm256_maskstore_ps(c.add(at), mask, v);
                }
            }
        }
    }

    /// The first `n` of 8 lanes (all for n ≥ 8), and whether there is any.
    #[target_feature(enable = "avx2")]
    fn lane_mask(n: usize) -> (__m256i, bool) {
        let lanes: [i32; 8] = std::array::from_fn(|i| if i < n { -1 } else { 0 });
        (unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }, n > 0)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Epilogue, MR, NR};

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        ep: Epilogue,
    ) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            for p in 0..k {
                let b0 = _mm512_loadu_ps(b.add(p * NR));
                let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(r * lda + p));
                    row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(av, b1, row[1]);
                }
            }
            let masks = [lane_mask(nr), lane_mask(nr.saturating_sub(16))];
            let zero = _mm512_setzero_ps();
            let bias = [_mm512_loadu_ps(ep.bias), _mm512_loadu_ps(ep.bias.add(16))];
            for (r, row) in acc.iter().enumerate().take(mr) {
                for (j, &mask) in masks.iter().enumerate() {
                    if mask == 0 {
                        continue;
                    }
                    let at = r * ldc + 16 * j;
                    let mut v = row[j];
                    if ep.accumulate {
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, c.add(at)));
                    }
                    if ep.last {
                        v = _mm512_add_ps(v, bias[j]);
                        if !ep.residual.is_null() {
                            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, ep.residual.add(at)));
                        }
                        if ep.relu {
                            v = _mm512_max_ps(v, zero);
                        }
                        if !ep.gate.is_null() {
                            let open =
                                _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_maskz_loadu_ps(mask, ep.gate.add(at)), zero);
                            v = _mm512_maskz_mov_ps(open, v);
                        }
                    }
                    _mm512_mask_storeu_ps(c.add(at), mask, v);
                }
            }
        }
    }

    /// The first `n` of 16 lanes (all for n ≥ 16).
    fn lane_mask(n: usize) -> __mmask16 {
        if n >= 16 { 0xffff } else { ((1u32 << n) - 1) as __mmask16 }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use std::arch::wasm32::*;

    use super::{Epilogue, NR};

    /// The 12 × 32 block as twelve 4 × 8 parts: 8 accumulators, two rows of the panel and a
    /// broadcast fit the 16 vector registers of an x86-64 host. WebAssembly SIMD has no fused
    /// multiply-add outside relaxed SIMD, which not every browser has: a multiply, then an add.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        ep: Epilogue,
    ) {
        for r0 in (0..mr).step_by(4) {
            for c0 in (0..nr).step_by(8) {
                let at = r0 * ldc + c0;
                let (rows, cols) = ((mr - r0).min(4), nr - c0);
                unsafe { part(k, a.add(r0 * lda), lda, b.add(c0), c.add(at), ldc, rows, cols, ep.shifted(at, c0)) };
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn part(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        ep: Epilogue,
    ) {
        unsafe {
            let mut acc = [[f32x4_splat(0.0); 2]; 4];
            for p in 0..k {
                let b0 = v128_load(b.add(p * NR).cast());
                let b1 = v128_load(b.add(p * NR + 4).cast());
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = f32x4_splat(*a.add(r * lda + p));
                    row[0] = f32x4_add(row[0], f32x4_mul(av, b0));
                    row[1] = f32x4_add(row[1], f32x4_mul(av, b1));
                }
            }
            let zero = f32x4_splat(0.0);
            for (r, row) in acc.iter().enumerate().take(mr) {
                for (j, &sum) in row.iter().enumerate() {
                    let lanes = nr.saturating_sub(4 * j).min(4);
                    let at = r * ldc + 4 * j;
                    if lanes == 4 {
                        let mut v = sum;
                        if ep.accumulate {
                            v = f32x4_add(v, v128_load(c.add(at).cast()));
                        }
                        if ep.last {
                            v = f32x4_add(v, v128_load(ep.bias.add(4 * j).cast()));
                            if !ep.residual.is_null() {
                                v = f32x4_add(v, v128_load(ep.residual.add(at).cast()));
                            }
                            if ep.relu {
                                // `0 < v ? v : 0`: NaN becomes 0, as x86's max does.
                                v = f32x4_pmax(zero, v);
                            }
                            if !ep.gate.is_null() {
                                v = v128_and(v, f32x4_gt(v128_load(ep.gate.add(at).cast()), zero));
                            }
                        }
                        v128_store(c.add(at).cast(), v);
                    } else if lanes > 0 {
                        let mut values = [0.0f32; 4];
                        v128_store(values.as_mut_ptr().cast(), sum);
                        for (l, &v) in values.iter().enumerate().take(lanes) {
                            *c.add(at + l) = ep.scalar(v, c, at + l, 4 * j + l);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    use super::{Epilogue, NR};

    /// The 12 × 32 block as four 6 × 16 quarters, as AVX2 does it: 24 accumulators, four
    /// vectors of the panel and a broadcast in the 32 registers.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        ep: Epilogue,
    ) {
        for r0 in [0, 6].into_iter().filter(|&r0| r0 < mr) {
            for c0 in [0, 16].into_iter().filter(|&c0| c0 < nr) {
                let at = r0 * ldc + c0;
                let (rows, cols) = ((mr - r0).min(6), nr - c0);
                unsafe { quarter(k, a.add(r0 * lda), lda, b.add(c0), c.add(at), ldc, rows, cols, ep.shifted(at, c0)) };
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn quarter(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mr: usize,
        nr: usize,
        ep: Epilogue,
    ) {
        unsafe {
            let mut acc = [[vdupq_n_f32(0.0); 4]; 6];
            for p in 0..k {
                let panel = b.add(p * NR);
                let bv = [vld1q_f32(panel), vld1q_f32(panel.add(4)), vld1q_f32(panel.add(8)), vld1q_f32(panel.add(12))];
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = vdupq_n_f32(*a.add(r * lda + p));
                    for (v, &bj) in row.iter_mut().zip(&bv) {
                        *v = vfmaq_f32(*v, av, bj);
                    }
                }
            }
            let zero = vdupq_n_f32(0.0);
            for (r, row) in acc.iter().enumerate().take(mr) {
                for (j, &sum) in row.iter().enumerate() {
                    let lanes = nr.saturating_sub(4 * j).min(4);
                    let at = r * ldc + 4 * j;
                    if lanes == 4 {
                        let mut v = sum;
                        if ep.accumulate {
                            v = vaddq_f32(v, vld1q_f32(c.add(at)));
                        }
                        if ep.last {
                            v = vaddq_f32(v, vld1q_f32(ep.bias.add(4 * j)));
                            if !ep.residual.is_null() {
                                v = vaddq_f32(v, vld1q_f32(ep.residual.add(at)));
                            }
                            if ep.relu {
                                // maxNM: NaN becomes 0, as x86's max does.
                                v = vmaxnmq_f32(v, zero);
                            }
                            if !ep.gate.is_null() {
                                let open = vcgtq_f32(vld1q_f32(ep.gate.add(at)), zero);
                                v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), open));
                            }
                        }
                        vst1q_f32(c.add(at), v);
                    } else if lanes > 0 {
                        let mut values = [0.0f32; 4];
                        vst1q_f32(values.as_mut_ptr(), sum);
                        for (l, &v) in values.iter().enumerate().take(lanes) {
                            *c.add(at + l) = ep.scalar(v, c, at + l, 4 * j + l);
                        }
                    }
                }
            }
        }
    }
}
