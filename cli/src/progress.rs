//! Progress bars on a terminal; nothing when stderr is not one or output is JSON.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `len` units of `what` (images, steps, bytes), hidden when `quiet` or when
/// stderr is not a terminal.
pub fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = if what == "bytes" {
        "{spinner:.cyan} [{bar:32.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
    } else {
        "{spinner:.cyan} {msg} [{bar:32.cyan/blue}] {pos}/{len} {unit} {per_sec} ETA {eta}"
    };
    let style = ProgressStyle::with_template(&template.replace("{unit}", what))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style)
}

/// A terminal bar as a pipeline stage's [`Progress`]; warnings print above it.
pub struct Bar {
    bar: ProgressBar,
    quiet: bool,
}

impl Bar {
    pub fn new(quiet: bool) -> Self {
        Bar { bar: ProgressBar::hidden(), quiet }
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }
}

impl salient_pipeline::Progress for Bar {
    fn start(&self, total: u64, unit: &str) {
        let fresh = bar(total, unit, self.quiet);
        if fresh.is_hidden() {
            return;
        }
        // A stage may have several phases: each starts a fresh count.
        self.bar.reset();
        self.bar.set_style(fresh.style());
        self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {}", salient_engine::fsutil::escape(message)));
    }
    fn message(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{}", salient_engine::fsutil::escape(text)));
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
