//! Choosing the compute backend at run time among those compiled in.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

use crate::error::Error;

/// A compute backend. Which ones exist depends on the engine's cargo features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (`flex`): the default, everywhere.
    Flex,
    /// A GPU through wgpu (Vulkan, Metal, DirectX; WebGPU in a browser).
    Wgpu,
    /// NVIDIA GPUs through CUDA.
    Cuda,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Flex, Backend::Wgpu, Backend::Cuda];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// The fastest backend this build can use on this machine, for `--backend auto`: CUDA when
    /// compiled in and an NVIDIA driver is loaded, else wgpu when compiled in (a build made for a
    /// GPU), else `flex`. Never a software GPU by default: the default build has no GPU backend,
    /// and on a machine without a GPU, wgpu's software Vulkan runs ResNet-50 ~20× slower than
    /// `flex` (measured: 0.3 vs 6.4 images/s on 2 cores).
    pub fn fastest() -> Backend {
        if Backend::Cuda.is_compiled() && nvidia_driver_loaded() {
            Backend::Cuda
        } else if Backend::Wgpu.is_compiled() {
            Backend::Wgpu
        } else {
            Backend::Flex
        }
    }

    /// Whether this build includes the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Wgpu => cfg!(any(feature = "wgpu", feature = "webgpu")),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The device for this backend, or an error saying how to get a build that has it.
    pub fn device(self) -> Result<Device, Error> {
        if !self.is_compiled() {
            return Err(Error::Invalid(format!(
                "this build has no {} backend: rebuild with `--features {}`",
                self.name(),
                self.name()
            )));
        }
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(all(feature = "webgpu", not(feature = "wgpu")))]
            Backend::Wgpu => Ok(Device::webgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            _ => unreachable!("checked by is_compiled"),
        }
    }
}

/// Linux exposes a loaded NVIDIA kernel driver here; elsewhere, a CUDA build is taken as made
/// for a machine with the GPU.
fn nvidia_driver_loaded() -> bool {
    !cfg!(target_os = "linux") || std::path::Path::new("/proc/driver/nvidia/version").exists()
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;
    /// `flex`, `wgpu`, `cuda`, or `auto` ([`Backend::fastest`]).
    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "auto" {
            return Ok(Backend::fastest());
        }
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| Error::Invalid(format!("unknown backend `{s}`: use auto, flex, wgpu or cuda")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_a_compiled_backend_and_names_parse() {
        let auto: Backend = "auto".parse().unwrap();
        assert!(auto.is_compiled());
        assert_eq!(auto, Backend::fastest());
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        let e = "tpu".parse::<Backend>().unwrap_err().to_string();
        assert!(e.contains("unknown backend `tpu`") && e.contains("auto, flex, wgpu or cuda"), "{e}");
    }

    #[cfg(all(feature = "flex", not(any(feature = "cuda", feature = "wgpu", feature = "webgpu"))))]
    #[test]
    fn a_cpu_only_build_runs_flex_by_default() {
        assert_eq!(Backend::fastest(), Backend::Flex);
    }
}
