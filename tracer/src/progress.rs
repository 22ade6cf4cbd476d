//! A one-line progress display on stderr while recording, only on a terminal.

use std::io::{IsTerminal, Write};

pub struct Progress {
    enabled: bool,
    shown: bool,
}

/// What the line says, once a second.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub elapsed_s: u64,
    pub events: u64,
    /// Loop iterations of the threshold or more, so far.
    pub stalls: usize,
    pub dropped: u64,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    pub fn update(&mut self, pid: u32, counts: Counts) {
        if !self.enabled {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[K{}", line(pid, counts));
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

fn line(pid: u32, c: Counts) -> String {
    let stalls = if c.stalls == 1 { "stall" } else { "stalls" };
    format!(
        "recording pid {pid}: {} s, {} events, {} {stalls}, {} dropped (Ctrl-C to stop)",
        c.elapsed_s, c.events, c.stalls, c.dropped
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_elapsed_events_stalls_and_drops() {
        let counts = Counts {
            elapsed_s: 12,
            events: 3456,
            stalls: 3,
            dropped: 7,
        };
        assert_eq!(
            line(4242, counts),
            "recording pid 4242: 12 s, 3456 events, 3 stalls, 7 dropped (Ctrl-C to stop)"
        );
        let one = Counts {
            stalls: 1,
            ..counts
        };
        assert!(line(1, one).contains(", 1 stall,"), "{}", line(1, one));
    }

    #[test]
    fn silent_when_quiet() {
        let mut progress = Progress::new(true);
        progress.update(
            1,
            Counts {
                elapsed_s: 1,
                events: 1,
                stalls: 0,
                dropped: 0,
            },
        );
        assert!(!progress.shown);
    }
}
