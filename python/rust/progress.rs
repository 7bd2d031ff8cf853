//! A progress bar on the terminal Python runs in (nothing when stderr is not a terminal).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(show: bool) -> Self {
        let target = if show && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bar(ProgressBar::with_draw_target(None, target))
    }
}

impl salient_pipeline::Progress for Bar {
    fn start(&self, total: u64, unit: &str) {
        let template =
            format!("{{spinner:.cyan}} [{{bar:32.cyan/blue}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.0.set_style(style.progress_chars("=> "));
        }
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn warn(&self, message: &str) {
        self.0.suspend(|| eprintln!("warning: {}", salient_engine::fsutil::escape(message)));
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
