//! The packages of `cargo xtask dist`, installed as users install them in
//! Debian roots made by debootstrap (`cargo xtask test` passes their paths):
//! the wheel with pip into a fresh venv, whose `tracer` then traces an
//! asyncio target run in the same root, from inside it, as in a container;
//! the .deb with dpkg, whose man page then renders.

#[path = "dist/chroot.rs"]
mod chroot;

use std::{
    path::Path,
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use chroot::{Chroot, run};
use serde_json::Value;
use tracer_tests::{
    Lines, Target, assert_no_wrong_names, check_planted_stalls, given, planted_stall_threshold,
    ready_timeout, require_root,
};

/// `asyncio_sleep.py` blocks its loop 5 times for 200 ms in time.sleep.
const SLEEPS: usize = 5;
const SLEEP_MS: f64 = 200.0;
const SLEEP_SYSCALL: &str = "clock_nanosleep";
/// The .deb's package name.
const PACKAGE: &str = "event-loop-tracer";

/// A directory under the root's /tmp, removed on drop: its host path, and
/// its path inside the root.
struct WorkDir {
    dir: tempfile::TempDir,
    inside: String,
}

impl WorkDir {
    fn new(chroot: &Chroot) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tracer-dist-")
            .tempdir_in(chroot.root.join("tmp"))
            .expect("work dir in the root");
        let name = dir.path().file_name().expect("name").to_string_lossy();
        let inside = format!("/tmp/{name}");
        Self { dir, inside }
    }

    /// Copies `file` in; returns its path inside the root.
    fn copy(&self, file: &Path) -> String {
        let name = file.file_name().expect("file name");
        std::fs::copy(file, self.dir.path().join(name))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", file.display()));
        format!("{}/{}", self.inside, name.to_string_lossy())
    }
}

/// Kills the process on drop, when a test fails before it ended.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Installs the wheel with pip into a fresh venv of `python` in `root`,
/// and traces `asyncio_sleep.py` run by `python` there with the venv's
/// `tracer --pid`, from inside the root. Returns the planted stalls
/// (checked: count, syscall, duration).
fn trace_with_wheel(root: &Path, wheel: &Path, python: &str) -> Vec<Value> {
    let chroot = Chroot::enter(root);
    let work = WorkDir::new(&chroot);
    let wheel = work.copy(wheel);
    let script = work.copy(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/targets/asyncio_sleep.py"
    )));
    let venv = format!("{}/venv", work.inside);
    chroot.run(&[python, "-m", "venv", &venv]);
    // --no-index: a bin wheel without dependencies needs no network.
    chroot.run(&[&format!("{venv}/bin/pip"), "install", "--no-index", &wheel]);
    let tracer = format!("{venv}/bin/tracer");
    let version = chroot.run(&[&tracer, "--version"]);
    assert!(version.contains("kernels: Linux"), "{version}");

    let mut target = Target::start(&mut chroot.command(&[python, &script]));
    let json = format!("{}/report.json", work.inside);
    let pid = target.pid.to_string();
    let threshold = planted_stall_threshold();
    let mut running = Running(
        chroot
            .command(&[
                &tracer,
                "--pid",
                &pid,
                "--threshold",
                threshold,
                "--json",
                &json,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the venv's tracer"),
    );
    let mut stderr = Lines::new(running.0.stderr.take().expect("piped stderr"));
    stderr.wait_for("attached to pid", ready_timeout());
    target.go();
    assert!(target.wait(Duration::from_secs(30)).success());
    // The tracer ends when its target exits.
    let deadline = Instant::now() + ready_timeout();
    let status = loop {
        if let Some(status) = running.0.try_wait().expect("wait for tracer") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "tracer did not end: {:?}",
            stderr.seen
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "tracer failed: {:?}", stderr.rest());
    let text = std::fs::read_to_string(work.dir.path().join("report.json")).expect("report");
    let report: Value = serde_json::from_str(&text).expect("JSON report");
    assert_no_wrong_names(&report);
    assert_eq!(
        report["target"]["cmdline"][0], python,
        "{:#}",
        report["target"]
    );
    let stalls = report["stalls"].as_array().cloned().unwrap_or_default();
    // A page read from a cold disk can stall an iteration too (a real
    // stall); nothing else may appear.
    let (sleeps, others): (Vec<Value>, Vec<Value>) = stalls
        .into_iter()
        .partition(|s| s["cause"]["syscall"] == SLEEP_SYSCALL);
    for other in &others {
        assert!(
            other["cause"]["syscall"] == "page fault" || other["cause"]["kind"] == "runqueue",
            "{python}: {other:#}"
        );
    }
    assert_eq!(sleeps.len(), SLEEPS, "{python}: {:#}", report["stalls"]);
    let refs: Vec<&Value> = sleeps.iter().collect();
    check_planted_stalls(&report, &refs, "syscall", Some(SLEEP_SYSCALL), SLEEP_MS);
    sleeps
}

/// The Python functions of a stall's stack, innermost first.
fn python_functions(stall: &Value) -> Vec<&str> {
    stall["cause"]["stack"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|frame| frame["kind"] == "python")
        .filter_map(|frame| frame["function"].as_str())
        .collect()
}

#[test]
fn install_wheel_in_bookworm_traces_python_frames() {
    let test = "install_wheel_in_bookworm_traces_python_frames";
    require_root!(test);
    let (Some(root), Some(wheel)) = (
        given("TRACER_BOOKWORM_ROOT", test),
        given("TRACER_WHEEL", test),
    ) else {
        return;
    };
    for stall in &trace_with_wheel(&root, &wheel, "python3.11") {
        let functions = python_functions(stall);
        assert_eq!(functions.first(), Some(&"handler"), "{stall:#}");
        assert!(functions.contains(&"main"), "{stall:#}");
    }
}

/// CPython 3.14's frames are not read yet (its support is being added):
/// the stalls, their syscall and duration only.
#[test]
fn install_wheel_in_sid_traces_python314_stalls() {
    let test = "install_wheel_in_sid_traces_python314_stalls";
    require_root!(test);
    let (Some(root), Some(wheel)) = (given("TRACER_SID_ROOT", test), given("TRACER_WHEEL", test))
    else {
        return;
    };
    trace_with_wheel(&root, &wheel, "python3.14");
}

#[test]
fn install_deb_in_bookworm_then_man_tracer() {
    let test = "install_deb_in_bookworm_then_man_tracer";
    require_root!(test);
    let (Some(root), Some(deb)) = (
        given("TRACER_BOOKWORM_ROOT", test),
        given("TRACER_DEB", test),
    ) else {
        return;
    };
    let chroot = Chroot::enter(&root);
    let work = WorkDir::new(&chroot);
    let deb = work.copy(&deb);
    // A run that failed after installing left it installed.
    let _ = chroot.command(&["dpkg", "--purge", PACKAGE]).output();
    chroot.run(&["dpkg", "-i", &deb]);
    let version = chroot.run(&["tracer", "--version"]);
    assert!(version.contains("(commit "), "{version}");
    // Wide enough that no line wraps: no justified spaces, no hyphens.
    let man = run(chroot
        .command(&["man", "-P", "cat", "tracer"])
        .env("MANWIDTH", "1000"));
    for expected in [
        "tracer - Find what blocks a service's event loop",
        "--all-syscalls",
        "--threshold",
        "tracer-report(1)",
    ] {
        assert!(
            man.contains(expected),
            "man tracer lacks {expected:?}:\n{man}"
        );
    }
    let report = run(chroot
        .command(&["man", "-P", "cat", "tracer-report"])
        .env("MANWIDTH", "1000"));
    assert!(
        report.contains("Render the reports of a recording"),
        "{report}"
    );
    for (completion, expected) in [
        (
            "usr/share/bash-completion/completions/tracer",
            "complete -F",
        ),
        (
            "usr/share/zsh/vendor-completions/_tracer",
            "#compdef tracer",
        ),
        (
            "usr/share/fish/vendor_completions.d/tracer.fish",
            "complete -c tracer",
        ),
    ] {
        let text = std::fs::read_to_string(root.join(completion)).expect(completion);
        assert!(text.contains(expected), "{completion}: {text}");
        assert!(text.contains("all-syscalls"), "{completion}: {text}");
    }
    assert!(
        root.join(format!("usr/share/doc/{PACKAGE}/README.md"))
            .exists()
    );
    chroot.run(&["dpkg", "--purge", PACKAGE]);
    assert!(!root.join("usr/bin/tracer").exists());
}
