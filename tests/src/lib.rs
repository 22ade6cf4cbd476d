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

pub mod browser;
pub mod prometheus;
pub mod screenshot;
pub mod tmux;

use serde_json::Value;

pub mod interpreters;
pub mod node;

/// How long a target or the tracer may take to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How many times slower than this machine the tests run: $TRACER_TEST_SLOW
/// (`cargo xtask vm-test` sets it in its qemu guests, where code runs 5-20x
/// slower and the verifier alone took 12 s per program on 6.1), else 1.
/// It widens deadlines and timing tolerances, never a count, name or line.
pub fn slow_factor() -> u32 {
    std::env::var("TRACER_TEST_SLOW")
        .ok()
        .and_then(|factor| factor.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// The `--threshold` for a test whose planted stalls last 100 ms or more:
/// the tracer's default, 10 ms; under $TRACER_TEST_SLOW, 50 ms, since
/// emulation stretches ordinary loop iterations past 10 ms (one of 14 ms on
/// CPU under qemu TCG), and they would be stalls too.
pub fn planted_stall_threshold() -> &'static str {
    if slow_factor() > 1 { "50ms" } else { "10ms" }
}

/// [`READY_TIMEOUT`], times [`slow_factor`].
pub fn ready_timeout() -> Duration {
    READY_TIMEOUT * slow_factor()
}

/// A timing tolerance (a fraction of the expected time), times [`slow_factor`].
pub fn timing_tolerance(tolerance: f64) -> f64 {
    tolerance * f64::from(slow_factor())
}

/// Under $TRACER_TEST_SLOW only, the time a stall that blocked spent on CPU
/// around the call: the interpreter's own work, which emulation stretches
/// (the asyncio service's first upstream request, 305 ms blocked in recv,
/// was a 580 ms stall under qemu TCG). Not planted, like the run-queue time.
pub fn slow_cpu_ns(stall: &Value) -> f64 {
    if slow_factor() > 1 && stall["cause"]["kind"] == "syscall" {
        stall["on_cpu_ns"].as_f64().unwrap_or(0.0)
    } else {
        0.0
    }
}

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
    skip(test, "needs root (eBPF)")
}

/// Says a test is skipped, and why; under CI=true a skip is a failure.
pub fn skip(test: &str, why: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {why}, and under CI=true a skip is a failure"
    );
    eprintln!("skipped: {test} {why}");
    false
}

/// The path in $`name`, which `cargo xtask test` sets; without it the test
/// is skipped (see [`skip`]).
pub fn given(name: &str, test: &str) -> Option<PathBuf> {
    match std::env::var_os(name) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            skip(test, &format!("needs ${name} (cargo xtask test sets it)"));
            None
        }
    }
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
        while let Ok(line) = self.rx.recv_timeout(ready_timeout()) {
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
        let ready = stdout.wait_for("ready", ready_timeout());
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
        self.send("go");
    }

    /// Writes a line to the target's stdin (a command, for targets that
    /// take them).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("target stdin");
        writeln!(stdin, "{line}").expect("write to target");
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

/// Traces the target `command` starts (it prints "ready PID", then waits
/// for a line on stdin) from its start to its exit, with
/// [`planted_stall_threshold`] and `args`.
pub fn trace_target(mut command: Command, args: &[&str]) -> Finished {
    let mut target = Target::start(&mut command);
    let mut all = vec!["--threshold", planted_stall_threshold()];
    all.extend_from_slice(args);
    let tracer = Tracer::attach(target.pid, &all);
    target.go();
    assert!(target.wait(ready_timeout()).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    done
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
        stderr.wait_for("tracer: attached to", ready_timeout());
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
        let status = wait_with_deadline(&mut self.child, ready_timeout());
        let stderr = self.stderr.rest();
        let path = self.dir.path().join("report.json");
        let report = std::fs::read_to_string(&path)
            .map(|text| serde_json::from_str(&text).expect("valid JSON report"))
            .unwrap_or(Value::Null);
        assert_no_wrong_names(&report);
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

/// How far a planted stall's measured length may be from the planted one,
/// once what was not planted is taken out (see [`not_planted_ns`]).
pub const STALL_TOLERANCE: f64 = 0.10;

/// Each of `stalls` has cause `kind` in `syscall` (None: no call) and lasted
/// `ms`, within [`STALL_TOLERANCE`] once what was not planted is taken out.
/// Under emulation ($TRACER_TEST_SLOW) the interpreter's own work around a
/// blocking call can outgrow the planted block (a first upstream request:
/// 284 ms on CPU beside 303 ms blocked, under qemu TCG), and the cause of a
/// syscall stall is then "mixed": the call it names must still be the one.
pub fn check_planted_stalls(
    report: &Value,
    stalls: &[&Value],
    kind: &str,
    syscall: Option<&str>,
    ms: f64,
) {
    for stall in stalls {
        let found = &stall["cause"]["kind"];
        let slow_mixed = slow_factor() > 1 && kind == "syscall" && found == "mixed";
        assert!(
            found == kind || slow_mixed,
            "cause {found}, not {kind}: {stall:#}"
        );
        assert_eq!(stall["cause"]["syscall"].as_str(), syscall, "{stall:#}");
        let duration = stall["duration_ns"].as_f64().unwrap_or(0.0);
        let other = not_planted_ns(report, stall, syscall) + slow_cpu_ns(stall);
        // A planted CPU stall spins until a deadline: time it waited for a
        // CPU lies inside the planted length rather than adding to it, but
        // for a last wait that ends past the deadline.
        let runqueue = stall["runqueue_ns"].as_f64().unwrap_or(0.0);
        let fewest_other = if kind == "cpu" {
            other - runqueue
        } else {
            other
        };
        let extra = duration - ms * 1e6;
        let error = if extra < fewest_other {
            fewest_other - extra
        } else {
            (extra - other).max(0.0)
        };
        let tolerance = timing_tolerance(STALL_TOLERANCE);
        assert!(
            error <= tolerance * ms * 1e6,
            "stall of {duration} ns ({other} ns waiting for a CPU or in other calls) is not \
             within {tolerance} of {ms} ms: {stall:#}"
        );
    }
}

/// Time in `stall` that was not the planted blocker's, as the tracer
/// measured it: waiting for a CPU (on 2 cores, a busy moment of the machine,
/// such as the tracer symbolizing a first stack, adds it), and asleep in
/// other calls (code and files read from a cold disk: the demo service's
/// first getaddrinfo imports the idna codec, and the dlopen of `unicodedata`
/// under it once slept 73 ms in a page fault).
pub fn not_planted_ns(report: &Value, stall: &Value, planted: Option<&str>) -> f64 {
    let start = stall["start_ns"].as_f64().unwrap_or(0.0);
    let end = start + stall["duration_ns"].as_f64().unwrap_or(0.0);
    let others: f64 = report["blocking"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| c["tid"] == stall["tid"] && c["syscall"].as_str() != planted)
        .map(|c| {
            let from = c["start_ns"].as_f64().unwrap_or(0.0);
            let to = from + c["duration_ns"].as_f64().unwrap_or(0.0);
            (to.min(end) - from.max(start)).max(0.0)
        })
        .sum();
    stall["runqueue_ns"].as_f64().unwrap_or(0.0) + others
}

/// The ids of the BPF programs process `pid` holds open (programs and
/// links), sorted, each once; none if the process is gone.
pub fn bpf_programs_held_by(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    let mut ids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Linker-made markers of where sections end: never a function's name. A
/// frame so named is an address past its module's last symbol.
const SECTION_MARKERS: &[&str] = &[
    "_end",
    "end",
    "_edata",
    "edata",
    "_etext",
    "etext",
    "__bss_start",
    "__end__",
];

/// Asserts that no frame anywhere in `report` has a wrong name: no section
/// marker, code in anonymous memory only as `[JIT] 0x…` in `[anon]`, and
/// JavaScript frames in no module.
/// Every report a test reads through [`Tracer::finish`] is checked.
pub fn assert_no_wrong_names(report: &Value) {
    let mut frames = Vec::new();
    collect_frames(report, &mut frames);
    for frame in frames {
        let function = frame["function"].as_str().unwrap_or_default();
        assert!(
            !SECTION_MARKERS.contains(&function),
            "a frame named after a section marker: {frame}"
        );
        // A JavaScript frame is named from V8's heap, never from a module.
        if frame["kind"] == "js" {
            assert!(frame["module"].is_null(), "{frame}");
            assert!(!function.is_empty(), "{frame}");
        }
        if function.starts_with("[JIT]") {
            assert_eq!(frame["module"], "[anon]", "{frame}");
            let addr = function.trim_start_matches("[JIT] 0x");
            assert!(u64::from_str_radix(addr, 16).is_ok(), "{frame}");
        }
    }
}

/// Every frame object (one with `function` and `kind`) inside `value`.
fn collect_frames<'a>(value: &'a Value, frames: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) if map.contains_key("function") && map.contains_key("kind") => {
            frames.push(value)
        }
        Value::Object(map) => map.values().for_each(|v| collect_frames(v, frames)),
        Value::Array(items) => items.iter().for_each(|v| collect_frames(v, frames)),
        _ => {}
    }
}

/// Whether the report's kernel names no asyncio Task (one without bpf_loop,
/// 5.10 in the matrix, says so in `kernel_limits`); then every stall's task
/// must be null, and is checked to be.
pub fn kernel_names_no_task(report: &Value) -> bool {
    let said = report["kernel_limits"]
        .as_array()
        .expect("kernel_limits")
        .iter()
        .any(|l| {
            l.as_str()
                .is_some_and(|l| l.contains("no asyncio Task is named"))
        });
    if said {
        for stall in report["stalls"].as_array().expect("stalls") {
            assert!(stall["cause"]["task"].is_null(), "{stall:#}");
        }
    }
    said
}
