//! Perf maps (`/tmp/perf-PID.map`): the names a JIT gives the code it
//! writes into anonymous memory (`node --perf-basic-prof`, Python 3.12+
//! `-X perf`, JVM agents). One line per code object, `START SIZE name`, in
//! hex without `0x`. The runtime appends lines while it runs, so the file is
//! read incrementally: the bytes already parsed are not read again.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

/// An address not found is looked up again after a re-read of the file, at
/// most this often (the JIT may have written its line since).
const MIN_REREAD_INTERVAL: Duration = Duration::from_millis(100);

/// A runtime that writes megabytes of names is not read past this: names of
/// code written later are not worth the tracer's memory.
const MAX_BYTES: u64 = 64 << 20;

/// One process's perf map, as far as it has been read.
pub struct PerfMap {
    path: PathBuf,
    /// Bytes of the file parsed so far (up to the last complete line).
    parsed: u64,
    /// Code objects by start address: `(end, name)`.
    entries: BTreeMap<u64, (u64, Arc<str>)>,
    last_read: Option<Instant>,
}

impl PerfMap {
    /// The perf map of process `pid` (our pid namespace's number). A target
    /// in a container writes it in its own /tmp, named by its pid there.
    pub fn for_process(pid: u32) -> Self {
        let nspid = read_nspid(pid).unwrap_or(pid);
        Self::at(PathBuf::from(format!(
            "/proc/{pid}/root/tmp/perf-{nspid}.map"
        )))
    }

    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            parsed: 0,
            entries: BTreeMap::new(),
            last_read: None,
        }
    }

    /// The name of the code at `addr`: from what was read, else from the
    /// lines written since the last read (at most every MIN_REREAD_INTERVAL).
    pub fn lookup(&mut self, addr: u64) -> Option<Arc<str>> {
        if let Some(name) = self.find(addr) {
            return Some(name);
        }
        if self
            .last_read
            .is_some_and(|at| at.elapsed() < MIN_REREAD_INTERVAL)
        {
            return None;
        }
        self.read_new();
        self.find(addr)
    }

    fn find(&self, addr: u64) -> Option<Arc<str>> {
        let (_, (end, name)) = self.entries.range(..=addr).next_back()?;
        (addr < *end).then(|| name.clone())
    }

    /// Parses the complete lines appended since the last read.
    fn read_new(&mut self) {
        self.last_read = Some(Instant::now());
        if self.parsed >= MAX_BYTES {
            return;
        }
        let Ok(mut file) = File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.parsed)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        if let Err(error) = file.take(MAX_BYTES - self.parsed).read_to_end(&mut bytes) {
            log::debug!("reading {}: {error}", self.path.display());
            return;
        }
        // A line still being written is parsed at the next read.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in String::from_utf8_lossy(&bytes[..complete]).lines() {
            if let Some((start, end, name)) = parse_line(line) {
                self.insert(start, end, name);
            }
        }
        self.parsed += complete as u64;
    }

    /// Adds a code object; it replaces those it overlaps (the JIT reused
    /// their memory after they were freed: the newest line is right).
    fn insert(&mut self, start: u64, end: u64, name: &str) {
        let overlapped: Vec<u64> = self
            .entries
            .range(..end)
            .rev()
            .take_while(|(_, (old_end, _))| *old_end > start)
            .map(|(&old_start, _)| old_start)
            .collect();
        for old in overlapped {
            self.entries.remove(&old);
        }
        self.entries.insert(start, (end, Arc::from(name)));
    }
}

/// `START SIZE name` (hex, without `0x`; the name may hold spaces).
fn parse_line(line: &str) -> Option<(u64, u64, &str)> {
    let mut fields = line.splitn(3, ' ');
    let start = u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()?;
    let size = u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()?;
    let name = fields.next()?.trim();
    if size == 0 || name.is_empty() {
        return None;
    }
    Some((start, start.checked_add(size)?, name))
}

/// The pid of `pid` inside its own pid namespace (the last `NSpid` field).
fn read_nspid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_nspid(&status)
}

fn parse_nspid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn parses_lines() {
        assert_eq!(
            parse_line("3f0a2c04a0c0 5c LazyCompile:*spinForRender /srv/app.js:12"),
            Some((
                0x3f0a2c04a0c0,
                0x3f0a2c04a11c,
                "LazyCompile:*spinForRender /srv/app.js:12"
            ))
        );
        assert_eq!(
            parse_line("7f00 10 py::f:/x.py"),
            Some((0x7f00, 0x7f10, "py::f:/x.py"))
        );
        assert_eq!(parse_line("zz 10 name"), None);
        assert_eq!(parse_line("7f00 0 empty"), None);
        assert_eq!(parse_line("7f00 10"), None);
        assert_eq!(parse_line("ffffffffffffffff 10 wraps"), None);
    }

    #[test]
    fn nspid_is_the_innermost() {
        let status = "Name:\tnode\nNSpid:\t4242\t7\nPPid:\t1\n";
        assert_eq!(parse_nspid(status), Some(7));
        assert_eq!(parse_nspid("NSpid:\t99\n"), Some(99));
        assert_eq!(parse_nspid("Name:\tx\n"), None);
    }

    #[test]
    fn looks_up_and_reads_what_was_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perf-1.map");
        let mut file = File::create(&path).unwrap();
        writeln!(file, "1000 100 JS:*first /a.js:1").unwrap();
        // A line still being written: not parsed yet.
        write!(file, "3000 10").unwrap();
        file.flush().unwrap();
        let mut map = PerfMap::at(path);
        assert_eq!(map.lookup(0x1000).as_deref(), Some("JS:*first /a.js:1"));
        assert_eq!(map.lookup(0x10ff).as_deref(), Some("JS:*first /a.js:1"));
        assert_eq!(map.lookup(0x1100), None);
        assert_eq!(map.lookup(0x3004), None);
        writeln!(file, "0 second").unwrap();
        // Memory reused by newer code: the newer name wins.
        writeln!(file, "1080 100 JS:*third /a.js:3").unwrap();
        file.flush().unwrap();
        // Not re-read before the interval has passed.
        assert_eq!(map.lookup(0x3004), None);
        map.last_read = None;
        assert_eq!(map.lookup(0x3004).as_deref(), Some("second"));
        assert_eq!(map.lookup(0x1000), None);
        assert_eq!(map.lookup(0x1090).as_deref(), Some("JS:*third /a.js:3"));
    }
}
