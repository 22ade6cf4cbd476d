//! Helpers for the integration tests: start target programs, run the real
//! `tracer` binary against them, read its JSON report. Synchronisation is by
//! lines the programs print (no fixed sleeps), each wait with a deadline.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::PathBuf,
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{Receiver, channel},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// How long a target or the tracer may take to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The tracer binary: $TRACER_BIN, or target/release/tracer.
pub fn tracer_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TRACER_BIN") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/tracer");
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo xtask test`",
        path.display()
    );
    path
}

/// Whether this machine can run eBPF tests (root). Under CI=true a test that
/// cannot run is a failure, never a skip.
pub fn can_trace(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: needs root, and under CI=true a skip is a failure"
    );
    eprintln!("skipped: {test} needs root (eBPF)");
    false
}

/// Returns from the test (skipped) unless it can trace.
#[macro_export]
macro_rules! require_root {
    ($name:expr) => {
        if !$crate::can_trace($name) {
            return;
        }
    };
}

/// Lines of a child's pipe, read by a thread, received with a deadline.
pub struct Lines {
    rx: Receiver<String>,
    /// Every line seen so far, for error messages.
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(pipe: impl Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// All remaining lines until the pipe closes.
    pub fn rest(&mut self) -> Vec<String> {
        while let Ok(line) = self.rx.recv_timeout(READY_TIMEOUT) {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

/// A target program that prints `ready PID` when set up; killed on drop.
pub struct Target {
    child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Lines,
    pub pid: u32,
}

impl Target {
    pub fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdin = child.stdin.take();
        let mut stdout = Lines::new(child.stdout.take().expect("piped stdout"));
        let ready = stdout.wait_for("ready", READY_TIMEOUT);
        let pid = ready
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(child.id());
        Self {
            child,
            stdin,
            stdout,
            pid,
        }
    }

    /// Tells a target started with `--wait` (or reading stdin) to go on.
    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("target stdin");
        stdin.write_all(b"go\n").expect("write to target");
        stdin.flush().expect("flush target stdin");
    }

    /// The pid of the process started (the printed pid may differ: e.g.
    /// inside a PID namespace).
    pub fn child_pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the target to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        wait_with_deadline(&mut self.child, timeout)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running `tracer`, started with `--json` into a temporary directory.
pub struct Tracer {
    child: Child,
    pub stderr: Lines,
    stdout: Option<std::process::ChildStdout>,
    dir: tempfile::TempDir,
}

/// What a finished tracer left.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: Vec<String>,
    pub report: Value,
}

impl Tracer {
    /// Starts `tracer ARGS --json FILE` and waits until it has attached.
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // --json goes first: everything after `--` belongs to the command.
        let mut child = Command::new(tracer_bin())
            .arg("--json")
            .arg(dir.path().join("report.json"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tracer");
        let mut stderr = Lines::new(child.stderr.take().expect("piped stderr"));
        stderr.wait_for("attached to pid", READY_TIMEOUT);
        let stdout = child.stdout.take();
        Self {
            child,
            stderr,
            stdout,
            dir,
        }
    }

    /// `tracer --pid PID ARGS`, attached.
    pub fn attach(pid: u32, args: &[&str]) -> Self {
        let pid = pid.to_string();
        let mut all = vec!["--pid", &pid];
        all.extend_from_slice(args);
        Self::start(&all)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT (as Ctrl-C does) and waits for the report.
    pub fn interrupt(self) -> Finished {
        self.signal(libc::SIGINT)
    }

    /// Sends SIGTERM and waits for the report.
    pub fn terminate(self) -> Finished {
        self.signal(libc::SIGTERM)
    }

    fn signal(self, signal: i32) -> Finished {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        self.finish()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the tracer to end by itself (target exit, --duration).
    pub fn finish(mut self) -> Finished {
        let mut stdout = String::new();
        if let Some(mut pipe) = self.stdout.take() {
            let _ = pipe.read_to_string(&mut stdout);
        }
        let status = wait_with_deadline(&mut self.child, READY_TIMEOUT);
        let stderr = self.stderr.rest();
        let path = self.dir.path().join("report.json");
        let report = std::fs::read_to_string(&path)
            .map(|text| serde_json::from_str(&text).expect("valid JSON report"))
            .unwrap_or(Value::Null);
        Finished {
            status,
            stdout,
            stderr,
            report,
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The syscall table row for `name`.
pub fn syscall_row<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["syscalls"]
        .as_array()?
        .iter()
        .find(|row| row["name"] == name)
}

/// Blocking calls of a syscall.
pub fn blocking_calls<'a>(report: &'a Value, syscall: &str) -> Vec<&'a Value> {
    report["blocking"]
        .as_array()
        .map(|calls| calls.iter().filter(|c| c["syscall"] == syscall).collect())
        .unwrap_or_default()
}

/// The function names of a stack, innermost first.
pub fn functions(stack: &Value) -> Vec<String> {
    stack
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| f["function"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts `value` is within `tolerance` (a fraction) of `expected`.
pub fn assert_near(what: &str, value: f64, expected: f64, tolerance: f64) {
    assert_near_or_stolen(what, value, expected, tolerance, 0.0);
}

/// As [`assert_near`], with `stolen_ns` more allowed: CPU time the
/// hypervisor took from this VM meanwhile (see [`stolen_ns`]). A thread's
/// time on CPU by the scheduler's switches includes it; the thread's own CPU
/// clock and a CPU-clock sampler do not.
pub fn assert_near_or_stolen(
    what: &str,
    value: f64,
    expected: f64,
    tolerance: f64,
    stolen_ns: f64,
) {
    let error = (value - expected).abs();
    assert!(
        error <= tolerance * expected + stolen_ns,
        "{what}: {value} is not within {:.0}% of {expected} (+ {stolen_ns} ns stolen)",
        tolerance * 100.0
    );
}

/// CPU time stolen from this VM by the hypervisor so far, all CPUs (the
/// `steal` column of /proc/stat, in ticks of 10 ms).
pub fn stolen_ns() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let ticks: f64 = stat
        .lines()
        .next()
        .and_then(|cpu| cpu.split_whitespace().nth(8)?.parse().ok())
        .expect("steal in /proc/stat");
    ticks * 1e7
}

/// The pyenv interpreter for `minor` (e.g. "3.11"): $PYENV_ROOT/versions/3.11.*/bin/python3.11.
pub fn pyenv_python(minor: &str) -> PathBuf {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
        .unwrap_or_else(|| PathBuf::from("/root/.pyenv"));
    let versions = std::fs::read_dir(root.join("versions"))
        .unwrap_or_else(|e| panic!("no pyenv versions under {}: {e}", root.display()));
    let mut found: Vec<PathBuf> = versions
        .flatten()
        .filter(|v| {
            let name = v.file_name().to_string_lossy().into_owned();
            name.strip_prefix(minor)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|v| v.path().join(format!("bin/python{minor}")))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no pyenv Python {minor} under {}", root.display()))
}
