//! The engine's one error type. Every message names the file (or option) at fault and says
//! what is wrong with it, in words a user can act on.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint that cannot be used: the message names the tensor key or byte offset.
    #[error("{path}: {message}")]
    Checkpoint { path: String, message: String },
    /// An image that cannot be decoded or is outside the supported sizes.
    #[error("{path}: {message}")]
    Image { path: String, message: String },
    /// A request that does not fit the model (a feature index out of range, say).
    #[error("{0}")]
    Invalid(String),
    /// The compute backend failed (a GPU that went away, a read-back that failed).
    #[error("compute backend error: {0}")]
    Backend(String),
}

impl Error {
    pub fn read(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Read { path: crate::fsutil::shown(path.as_ref()), source }
    }
    pub fn write(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Write { path: crate::fsutil::shown(path.as_ref()), source }
    }
    pub fn checkpoint(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Checkpoint { path: crate::fsutil::shown(path.as_ref()), message: message.into() }
    }
    pub fn image(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Image { path: crate::fsutil::shown(path.as_ref()), message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
