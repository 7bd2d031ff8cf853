//! Which weights a run uses, by the CLI's rules, and what identifies them in a manifest.

use std::path::{Path, PathBuf};

use salient_engine::{Backend, Engine};

use crate::error::Result;
use crate::manifest::{bytes_sha256, file_sha256};

/// The synthetic benchmark's robust model (`models/synth-robust.safetensors`), compiled in: the
/// default when no weights are given, so every command runs anywhere.
pub const BUILTIN_WEIGHTS: &[u8] = include_bytes!("../../models/synth-robust.safetensors");
const BUILTIN_SOURCE: &str = "built-in model (models/synth-robust.safetensors)";

/// Where `salient fetch-model` saves the robust ResNet-50:
/// `$XDG_CACHE_HOME/salient/models/imagenet_l2_3_0.pt` (`~/.cache` without it).
pub fn default_model_path() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("salient").join("models").join("imagenet_l2_3_0.pt"))
}

/// The weights file in use: `given` (the caller has already read `$SALIENT_WEIGHTS`), else
/// the file `salient fetch-model` saved; `None` means the built-in benchmark model.
pub fn weights_path(given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_path_buf).or_else(|| default_model_path().filter(|p| p.exists()))
}

/// What identifies the weights in a run manifest: their SHA-256.
pub fn fingerprint(given: Option<&Path>) -> Result<String> {
    match weights_path(given) {
        Some(p) => file_sha256(&p),
        None => Ok(bytes_sha256(BUILTIN_WEIGHTS)),
    }
}

/// Loads the weights (see [`weights_path`]) on `backend`'s device; the built-in model comes
/// with a warning, since it knows 10 shapes, not ImageNet.
pub fn load(given: Option<&Path>, backend: Backend) -> Result<Engine> {
    let device = backend.device()?;
    match weights_path(given) {
        Some(path) => Ok(Engine::load(&path, &device)?),
        None => {
            eprintln!(
                "warning: no weights given (--weights, $SALIENT_WEIGHTS or `salient fetch-model`): using the \
                 built-in model of the synthetic benchmark, which knows 10 shapes, not ImageNet"
            );
            let sd = salient_engine::StateDict::from_bytes(BUILTIN_SOURCE, BUILTIN_WEIGHTS)?;
            Ok(Engine::from_state_dict(&sd, &device)?)
        }
    }
}
