//! The CLI's error type: engine errors pass through; the rest say what to do next.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] salient_engine::Error),
    #[error(transparent)]
    Pipeline(#[from] salient_pipeline::Error),
    /// Options that do not fit together or do not fit the model: exit status 2, as clap's.
    #[error("{0}")]
    Usage(String),
    /// Input data that cannot be used (a notes file, a mask, a thumbnail that fails).
    #[error("{0}")]
    Data(String),
    /// `salient serve` cannot listen, or stopped.
    #[error("{0}")]
    Serve(String),
    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
    /// Standard output went away (e.g. `| head`) or could not be written.
    #[error("cannot write to standard output: {0}")]
    Output(#[from] std::io::Error),
    /// Some inputs failed (each was reported as it happened); the rest were processed.
    #[error("{failed} of {total} images could not be processed (see the messages above)")]
    SomeFailed { failed: usize, total: usize },
}

impl Error {
    /// The process's exit status: 2 for usage errors (as clap's own), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Pipeline(salient_pipeline::Error::Usage(_)) => 2,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
