//! Long-running mode: `--rotate PERIOD --output DIR` writes a complete
//! report set per period into DIR/<start time>/, holding the stalls planted
//! in that period; SIGHUP ends a period at once; bad values are one error
//! line and exit status 2.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{Target, Tracer, planted_stall_threshold, pyenv_python, require_root};

/// The files every report set has.
const SET: [&str; 9] = [
    "report.txt",
    "report.json",
    "timeline.json",
    "cpu.folded",
    "cpu.svg",
    "offcpu.folded",
    "offcpu.svg",
    "cpu.pb.gz",
    "offcpu.pb.gz",
];

fn planted_stalls_target() -> Target {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/planted_stalls.py");
    Target::start(Command::new(pyenv_python("3.11")).arg(script))
}

/// The planted-stalls target, and a tracer attached to it writing into a
/// temporary directory with `args` (a --rotate period).
fn rotating(args: &[&str]) -> (Target, tempfile::TempDir, Tracer) {
    let target = planted_stalls_target();
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().to_str().expect("utf-8 path");
    let mut all = vec!["-o", dir, "--threshold", planted_stall_threshold()];
    all.extend_from_slice(args);
    let tracer = Tracer::attach(target.pid, &all);
    (target, out, tracer)
}

/// The report sets in `dir`, oldest first (their names sort by start time).
fn sets(dir: &Path) -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    sets.sort();
    sets
}

/// A complete set's report, checked: every file there (a profile may be
/// empty: the target slept), the reports not empty, the JSON valid.
fn report_of(set: &Path) -> Value {
    for file in SET {
        let path = set.join(file);
        let size = std::fs::metadata(&path).map(|m| m.len());
        assert!(size.is_ok(), "{} missing", path.display());
        if file.starts_with("report") || file.starts_with("timeline") {
            assert!(size.is_ok_and(|s| s > 0), "{} empty", path.display());
        }
    }
    let text = std::fs::read_to_string(set.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("valid report.json")
}

/// The planted stalls of a report: those asleep 50 ms or more (each sleeps
/// 60 ms). Not by cause: on a busy machine a planted stall can wait longer
/// for a CPU after its sleep than it slept, and its cause is then the run
/// queue; an iteration merely kept from a CPU sleeps nothing.
fn planted(report: &Value) -> usize {
    report["stalls"]
        .as_array()
        .expect("stalls")
        .iter()
        .filter(|s| s["blocked_ns"].as_u64().expect("blocked_ns") >= 50_000_000)
        .count()
}

/// A set's period in wall-clock ms: its start is in the timeline's header.
fn period(set: &Path, report: &Value) -> (u64, u64) {
    let text = std::fs::read_to_string(set.join("timeline.json")).expect("timeline.json");
    let timeline: Value = serde_json::from_str(&text).expect("valid timeline.json");
    let start = timeline["otherData"]["started_unix_ms"]
        .as_u64()
        .expect("started_unix_ms");
    let duration_ms = report["duration_ns"].as_u64().expect("duration_ns") / 1_000_000;
    (start, start + duration_ms)
}

#[test]
fn each_period_is_a_set_with_its_own_stalls() {
    require_root!("each_period_is_a_set_with_its_own_stalls");
    let (mut target, out, tracer) = rotating(&["--rotate", "2s", "-d", "7s"]);
    // A 60 ms stall every 500 ms for the whole run, each logged with its
    // wall-clock end: the stall is recorded in the period it ends in.
    target.send("pace 7.5 60");
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    target.stdout.wait_for("paced", Duration::from_secs(30));
    let ends: Vec<u64> = target
        .stdout
        .seen
        .iter()
        .filter_map(|line| line.strip_prefix("stall "))
        .filter_map(|times| times.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let sets = sets(out.path());
    // 0-2, 2-4, 4-6 s rotated, and the last 1 s at the end of --duration.
    assert_eq!(sets.len(), 4, "{sets:?}");
    let reports: Vec<Value> = sets.iter().map(|s| report_of(s)).collect();
    let periods: Vec<(u64, u64)> = sets
        .iter()
        .zip(&reports)
        .map(|(s, r)| period(s, r))
        .collect();
    for (i, (start, end)) in periods.iter().enumerate() {
        let expected_ms = if i < 3 { 2000 } else { 1000 };
        let length = (end - start) as i64;
        assert!(
            (length - expected_ms).abs() < 300,
            "period {i}: {length} ms"
        );
    }
    // A stall ending within 30 ms of a boundary (the clocks of the target
    // and the tracer are read a little apart) may land on either side.
    let margin = 30;
    let mut total = 0;
    for (i, report) in reports.iter().enumerate() {
        let (start, end) = periods[i];
        let surely = ends
            .iter()
            .filter(|&&e| e >= start + margin && e + margin < end)
            .count();
        let maybe = ends
            .iter()
            .filter(|&&e| e + margin >= start && e < end + margin)
            .count();
        let found = planted(report);
        assert!(
            (surely..=maybe).contains(&found),
            "period {i} ({start}..{end}): {found} stalls, expected {surely}..={maybe} from {ends:?}"
        );
        total += found;
    }
    // Every stall of the run in exactly one period.
    let (first, last) = (periods[0].0, periods[3].1);
    let surely = ends
        .iter()
        .filter(|&&e| e >= first + margin && e + margin < last)
        .count();
    let maybe = ends
        .iter()
        .filter(|&&e| e + margin >= first && e < last + margin)
        .count();
    assert!(
        (surely..=maybe).contains(&total),
        "{total} stalls in all, {ends:?}"
    );
    assert!(surely >= 12, "a stall every 500 ms for 7 s: {ends:?}");
}

#[test]
fn sighup_ends_a_period_at_once() {
    require_root!("sighup_ends_a_period_at_once");
    let (mut target, out, tracer) = rotating(&["--rotate", "1h"]);
    target.send("stalls 2 60");
    target.stdout.wait_for("planted 2", Duration::from_secs(30));
    // SAFETY: signalling the tracer, our own child.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sets(out.path())
        .first()
        .is_some_and(|s| s.join("report.txt").exists())
    {
        assert!(Instant::now() < deadline, "no report set 30 s after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    target.send("stalls 3 60");
    target.stdout.wait_for("planted 3", Duration::from_secs(30));
    let done = tracer.interrupt();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let sets = sets(out.path());
    assert_eq!(sets.len(), 2, "{sets:?}");
    let first = report_of(&sets[0]);
    let second = report_of(&sets[1]);
    assert_eq!(first["ended_by"], "rotated (SIGHUP)");
    assert_eq!((planted(&first), planted(&second)), (2, 3));
    // The last set is also the --json report of the run's end.
    assert_eq!(planted(&done.report), 3);
}
