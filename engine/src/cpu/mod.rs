//! Inference convolutions for the CPU owned by the engine: weights packed once at load,
//! activations kept channels-last (NHWC) from one convolution to the next, and bias, residual
//! and ReLU applied in the microkernel's registers. burn's `flex` runs every other operation.
//!
//! [`kernel`] holds the microkernels (chosen at run time from the CPU), [`pack`] the weight
//! layout, [`conv`] the blocked, threaded convolution over slices, [`gradient`] a feature's
//! input gradient on them (the feature attack), and `extension` the seam
//! to burn: a backend extension implemented for `flex` (and, composed of burn's own operations,
//! for autodiff), so the model has one code path on every backend.

pub mod conv;
#[cfg(feature = "flex")]
pub mod extension;
pub mod gradient;
pub mod kernel;
pub mod pack;

pub use kernel::Isa;
pub use pack::ConvGeometry;
