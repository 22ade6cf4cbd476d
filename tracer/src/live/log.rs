//! While `tracer top` holds the terminal, the tracer's log lines cannot go
//! to stderr (they would tear the screen): they are kept here, the last one
//! is shown in the footer, and all are printed once the terminal is back.

use std::{io::Write, sync::Mutex};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A log target (env_logger's `Target::Pipe`) that keeps whole lines.
#[derive(Default)]
pub struct Sink {
    partial: Vec<u8>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            if let Ok(mut lines) = LINES.lock() {
                lines.push(text);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The last line logged, if any.
pub fn last() -> Option<String> {
    LINES.lock().ok()?.last().cloned()
}

/// Prints the lines kept to stderr, and forgets them.
pub fn replay() {
    let lines = match LINES.lock() {
        Ok(mut lines) => std::mem::take(&mut *lines),
        Err(_) => return,
    };
    for line in lines {
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_are_kept() {
        let mut sink = Sink::default();
        let _ = sink.write(b"[WARN ] first");
        assert_eq!(last().as_deref().filter(|l| l.contains("first")), None);
        let _ = sink.write(b" part\n[WARN ] second\n");
        assert_eq!(last().as_deref(), Some("[WARN ] second"));
        let lines = LINES.lock().map(|l| l.clone()).unwrap_or_default();
        assert!(lines.iter().any(|l| l == "[WARN ] first part"));
    }
}
