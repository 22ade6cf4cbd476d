//! A one-line progress display on stderr while recording, only on a terminal.

use std::io::{IsTerminal, Write};

pub struct Progress {
    enabled: bool,
    shown: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    pub fn update(&mut self, pid: u32, elapsed_s: u64, events: u64, dropped: u64) {
        if !self.enabled {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[Krecording pid {pid}: {elapsed_s} s, {events} events, {dropped} dropped (Ctrl-C to stop)"
        );
        let _ = stderr.flush();
        self.shown = true;
    }

    /// Clears the line before the report is printed.
    pub fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }
}
