//! `--cgroup PATH`: every process of a cgroup v2 and its descendants, the
//! ones inside at attach, a program started there while traced, and a
//! process moved into a cgroup made after attach; none outside. Each
//! planted stall is found once, under its own process.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::Duration,
};

use serde_json::Value;
use tracer_tests::{
    Target, Tracer, check_planted_stalls, functions, pyenv_python, require_root, tracer_bin,
};

/// Stalls each member plants, and how long each blocks (ms).
const STALLS: usize = 3;
const STALL_MS: f64 = 120.0;

/// A cgroup of the test's own, removed (after its processes) on drop.
struct TestCgroup {
    dir: PathBuf,
    /// Its path from the root of the cgroup2 mount.
    name: String,
}

impl TestCgroup {
    fn create() -> Self {
        let mount = cgroup2_mount();
        let name = format!("/tracer-test-{}", std::process::id());
        let dir = mount.join(&name[1..]);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Self { dir, name }
    }

    fn child(&self, name: &str) -> PathBuf {
        let dir = self.dir.join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        dir
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = fs::remove_dir(entry.path());
                }
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The first cgroup2 mount point (field 5 of /proc/self/mountinfo).
fn cgroup2_mount() -> PathBuf {
    let text = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .find_map(|line| {
            let (fields, after) = line.split_once(" - ")?;
            let mount = fields.split_whitespace().nth(4)?;
            (after.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount))
        })
        .expect("a cgroup2 mount")
}

fn member(when: &str) -> Vec<String> {
    vec![
        pyenv_python("3.11").display().to_string(),
        format!("{}/targets/cgroup_member.py", env!("CARGO_MANIFEST_DIR")),
        STALLS.to_string(),
        STALL_MS.to_string(),
        when.to_string(),
    ]
}

/// A member started outside any cgroup of the test.
fn start_outside() -> Target {
    let argv = member("wait");
    Target::start(Command::new(&argv[0]).args(&argv[1..]))
}

/// A member that enters `cgroup` and then starts the Python program there
/// (as systemd or a container runtime starts a service).
fn start_inside(cgroup: &Path, when: &str) -> Target {
    let script = format!("echo $$ > {}/cgroup.procs && exec \"$@\"", cgroup.display());
    Target::start(
        Command::new("sh")
            .args(["-c", &script, "sh"])
            .args(member(when)),
    )
}

fn move_into(cgroup: &Path, pid: u32) {
    fs::write(cgroup.join("cgroup.procs"), pid.to_string())
        .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", cgroup.display()));
}

fn stalls_of(report: &Value, pid: u32) -> Vec<Value> {
    report["stalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["pid"] == pid)
        .cloned()
        .collect()
}

/// The planted stalls of `pid`: its stalls in clock_nanosleep, each in the
/// planted coroutine; any other stall must be the machine's (a wait for a
/// CPU, or a page fault on a cold disk).
fn check_member(report: &Value, pid: u32, who: &str) {
    let (planted, others): (Vec<Value>, Vec<Value>) = stalls_of(report, pid)
        .into_iter()
        .partition(|s| s["cause"]["syscall"] == "clock_nanosleep");
    for other in &others {
        let machine =
            other["cause"]["kind"] == "runqueue" || other["cause"]["syscall"] == "page fault";
        assert!(machine, "{who} {pid}: {other:#}");
    }
    assert_eq!(planted.len(), STALLS, "{who} {pid}: {planted:#?}");
    let stalls: Vec<&Value> = planted.iter().collect();
    check_planted_stalls(
        report,
        &stalls,
        "syscall",
        Some("clock_nanosleep"),
        STALL_MS,
    );
    for stall in &planted {
        let stack = functions(&stall["cause"]["stack"]);
        assert!(
            stack.iter().any(|f| f == "planted_stall"),
            "{who} {pid}: {stack:?}"
        );
    }
}

#[test]
fn cgroup_members_before_during_and_moved_in() {
    require_root!("cgroup_members_before_during_and_moved_in");
    let cgroup = TestCgroup::create();
    let mut inside = start_inside(&cgroup.dir, "wait");
    let mut outside = start_outside();
    let mut moved = start_outside();
    // Well below the planted stalls, above a Python program's first loop
    // iterations (23 ms of CPU under emulation).
    let tracer = Tracer::start(&["--cgroup", &cgroup.name, "--threshold", "50ms"]);

    // A cgroup made after attach, and a process moved into it without
    // starting a program: the tracer's rescan finds both.
    let late = cgroup.child("late");
    move_into(&late, moved.pid);
    // A program started in the cgroup while traced stalls at once: the
    // kernel adds it as it starts.
    let mut started = start_inside(&cgroup.dir, "now");
    inside.go();
    outside.go();
    // Two rescans (one per second) for the moved process.
    thread::sleep(Duration::from_secs(2));
    moved.go();
    for target in [&mut inside, &mut outside, &mut moved, &mut started] {
        assert!(target.wait(Duration::from_secs(30)).success());
    }
    let done = tracer.interrupt();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let report = &done.report;

    assert_eq!(report["target"]["cgroup"], cgroup.name.as_str());
    assert_eq!(report["target"]["pid"], inside.pid);
    let traced: BTreeSet<u64> = report["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    let expected: BTreeSet<u64> = [inside.pid, started.pid, moved.pid]
        .into_iter()
        .map(u64::from)
        .collect();
    assert_eq!(traced, expected, "outside is {}", outside.pid);
    check_member(report, inside.pid, "inside at attach");
    check_member(report, started.pid, "started in the cgroup");
    check_member(report, moved.pid, "moved into a new child cgroup");
    assert!(stalls_of(report, outside.pid).is_empty());
}

#[test]
fn an_empty_cgroup_is_refused() {
    require_root!("an_empty_cgroup_is_refused");
    let cgroup = TestCgroup::create();
    let output = Command::new(tracer_bin())
        .args(["--cgroup", &cgroup.name])
        .output()
        .expect("run tracer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("has no processes (nor have its descendants): nothing to trace"),
        "{stderr}"
    );
}
