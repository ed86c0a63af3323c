//! A progress bar on stderr for runs that take more than a moment. Display only: it reads the
//! wall clock to decide when to draw, which never feeds back into a run.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `[#####.....] 12/30 days` on stderr, at most ten times a second, once the run has
/// taken longer than half a second, and only when stderr is a terminal.
#[derive(Debug)]
pub struct Progress {
    label: String,
    started: Instant,
    last: Option<Instant>,
    enabled: bool,
    drawn: bool,
}

impl Progress {
    /// A bar for `label` (e.g. "days", "runs").
    pub fn new(label: &str) -> Progress {
        Progress {
            label: label.to_owned(),
            started: Instant::now(),
            last: None,
            enabled: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// `done` of `total` are finished.
    pub fn update(&mut self, done: usize, total: usize) {
        if !self.enabled || self.started.elapsed() < Duration::from_millis(500) {
            return;
        }
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            && done < total
        {
            return;
        }
        self.last = Some(Instant::now());
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width);
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{}{}] {done}/{total} {} ({:.0} s)",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.label,
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// Clear the bar.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(70));
            self.drawn = false;
        }
    }
}
