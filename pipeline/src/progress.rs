//! How a stage reports progress and warnings, whoever shows them (a terminal bar in the CLI
//! and in Python, nothing in tests).

/// Progress of one stage, counted in `unit`s (images, classes).
pub trait Progress: Sync {
    /// Work of `total` units starts (a stage may start several phases).
    fn start(&self, _total: u64, _unit: &str) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// Something the user should read, that does not stop the stage.
    fn warn(&self, message: &str) {
        eprintln!("warning: {}", salient_engine::fsutil::escape(message));
    }
    /// What the stage is doing now (a phase starting), for a person watching.
    fn message(&self, text: &str) {
        eprintln!("{}", salient_engine::fsutil::escape(text));
    }
    /// The stage is over: hide the bar.
    fn finish(&self) {}
}

/// Warnings on standard error, no bar.
pub struct Quiet;

impl Progress for Quiet {}
