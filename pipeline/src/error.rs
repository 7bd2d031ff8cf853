//! The pipeline's error type. Each kind says whose move it is: the caller's arguments
//! ([`Error::Usage`]), the data ([`Error::Data`] and the engine's file errors), or a stage
//! or classifier that failed.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, decoding or writing a file (the message names it).
    #[error(transparent)]
    Engine(#[from] salient_engine::Error),
    /// Parameters that do not fit together, or do not fit the model or the data.
    #[error("{0}")]
    Usage(String),
    /// Input data that is corrupt or inconsistent (a part file, a mask whose hash changed).
    #[error("{0}")]
    Data(String),
    /// The classifier under test failed or answered in the wrong shape.
    #[error("the classifier failed: {0}")]
    Classifier(String),
    /// Some inputs failed (each was reported as it happened); the rest were processed.
    #[error("{failed} of {total} images could not be processed (see the messages above)")]
    SomeFailed { failed: usize, total: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
