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
}

/// Chooses the kernels: `off`, `avx2` or `avx512` (if the CPU has it); unset, the best one.
pub const ENV: &str = "SALIENT_CPU_KERNELS";

impl Isa {
    pub const ALL: [Isa; 2] = [Isa::Avx512, Isa::Avx2];

    /// Its short name, for reports and [`ENV`].
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
        }
    }

    /// Whether this CPU runs it.
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
                Isa::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The kernels to run: the best this CPU supports, or the one [`ENV`] names; `None` where
    /// the engine has none or `SALIENT_CPU_KERNELS=off` (then convolutions stay on burn's own
    /// path: wasm, ARM, x86-64 without AVX2).
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

/// `C[mr, nr] (+)= A[mr, k] · B[k, nr]`, then the epilogue. `a`: `MR` rows of `k` at stride
/// `lda`; `b`: `[k][NR]`; `c` and the residual: row stride `ldc`. Rows `mr..MR` of `a` are read
/// but not stored.
///
/// # Safety
/// `a` holds `MR` rows of `k` floats at stride `lda`, `b` `k·NR` floats, `bias` `NR`; `c` (and
/// the residual) hold `mr` rows of `nr` floats at stride `ldc`; the CPU has the kernel's
/// instruction set.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
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
        #[cfg(not(target_arch = "x86_64"))]
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
                let ep = Epilogue {
                    bias: ep.bias.wrapping_add(c0),
                    residual: ep.residual.wrapping_add(if ep.residual.is_null() { 0 } else { r0 * ldc + c0 }),
                    gate: ep.gate.wrapping_add(if ep.gate.is_null() { 0 } else { r0 * ldc + c0 }),
                    ..ep
                };
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
