//! The CLI's error type: engine errors pass through; the rest say what to do next.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] salient_engine::Error),
    #[error(transparent)]
    Pipeline(#[from] salient_pipeline::Error),
    /// Options that do not fit together or do not fit the model.
    #[error("{0}")]
    Usage(String),
    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
    /// Standard output went away (e.g. `| head`) or could not be written.
    #[error("cannot write to standard output: {0}")]
    Output(#[from] std::io::Error),
    /// Some inputs failed (each was reported as it happened); the rest were processed.
    #[error("{failed} of {total} images could not be processed (see the messages above)")]
    SomeFailed { failed: usize, total: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
