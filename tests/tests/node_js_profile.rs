//! A CPU profile of a Node.js busy loop shows each JavaScript function with
//! the share of the CPU it really has: the tracer's flame graph input, on a
//! process started with no flag, against `perf record -g` + `perf script`
//! on a second run with --perf-basic-prof (V8 names its JIT code in
//! /tmp/perf-PID.map). Without a working `perf`, the reference is the
//! tracer's own perf-map naming of that second run.

use std::{path::Path, process::Command, time::Duration};

use tracer_tests::{Target, Tracer, require_root};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/node_busy.js");
const HZ: &str = "199";
/// Points of share the two profiles may differ by.
const TOLERANCE: f64 = 8.0;

/// Runs the busy loop with `node_args`, profiled by `profile` (started
/// once the target is ready, given its pid) until the target exits.
fn run<T>(node_args: &[&str], cwd: &Path, profile: impl FnOnce(u32) -> T) -> (Target, T) {
    let mut target = Target::start(
        Command::new("node")
            .args(node_args)
            .arg(SCRIPT)
            .current_dir(cwd),
    );
    let profiler = profile(target.pid);
    target.go();
    target.stdout.wait_for("done", Duration::from_secs(60));
    assert!(target.wait(Duration::from_secs(30)).success());
    (target, profiler)
}

/// Share (percent) of the samples of folded stacks (`a;b;c COUNT`) that
/// have a frame whose name starts with `function`.
fn folded_share(folded: &str, function: &str) -> f64 {
    let (mut with, mut all) = (0u64, 0u64);
    for line in folded.lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else {
            continue;
        };
        let count: u64 = count.parse().expect("a count");
        all += count;
        if stack.split(';').any(|f| f.starts_with(function)) {
            with += count;
        }
    }
    assert!(all >= 100, "only {all} samples");
    100.0 * with as f64 / all as f64
}

/// --perf-basic-prof's map outlives the process: removed once read.
fn remove_perf_map(target: &Target) {
    let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", target.pid));
}

/// The tracer's profile of the busy loop in `dir`: its folded stacks.
fn tracer_folded(node_args: &[&str], dir: &Path) -> String {
    let out = dir.join("out");
    let out_arg = out.to_str().expect("utf-8").to_string();
    let (target, tracer) = run(node_args, dir, |pid| {
        Tracer::attach(pid, &["--rate", HZ, "-o", &out_arg])
    });
    let done = tracer.finish();
    remove_perf_map(&target);
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    std::fs::read_to_string(out.join("cpu.folded")).expect("cpu.folded")
}

/// `perf record -g` of the busy loop run with --perf-basic-prof, read by
/// `perf script`: the share of its samples with hotLoop on the stack. None
/// if perf cannot record here.
fn perf_share(dir: &Path) -> Option<f64> {
    let data = dir.join("perf.data");
    let (target, perf) = run(&["--perf-basic-prof"], dir, |pid| {
        Command::new("perf")
            .args(["record", "-F", HZ, "-g", "-p", &pid.to_string(), "-o"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()
    });
    let recorded = perf
        .and_then(|mut perf| perf.wait().ok())
        .is_some_and(|s| s.success());
    let script = recorded.then(|| {
        Command::new("perf")
            .arg("script")
            .arg("-i")
            .arg(&data)
            .output()
    });
    remove_perf_map(&target);
    let script = script?.ok()?;
    let text = String::from_utf8_lossy(&script.stdout);
    let samples: Vec<&str> = text
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .collect();
    if samples.len() < 100 {
        return None;
    }
    let hot = samples.iter().filter(|s| s.contains("hotLoop")).count();
    Some(100.0 * hot as f64 / samples.len() as f64)
}

#[test]
fn node_cpu_profile_shares_match_perf() {
    require_root!("node_cpu_profile_shares_match_perf");
    let dir = tempfile::tempdir().expect("temp dir");
    let ours = folded_share(&tracer_folded(&[], dir.path()), "hotLoop (");
    let reference = match perf_share(dir.path()) {
        Some(share) => {
            eprintln!("reference: perf script");
            share
        }
        None => {
            eprintln!("reference: perf unavailable, the tracer's perf-map names");
            let folded = tracer_folded(&["--perf-basic-prof"], dir.path());
            folded_share(&folded, "hotLoop")
        }
    };
    eprintln!("hotLoop: {ours:.1}% of samples (tracer), {reference:.1}% (reference)");
    assert!(
        (ours - reference).abs() <= TOLERANCE,
        "hotLoop: {ours:.1}% in the tracer's profile, {reference:.1}% in the reference"
    );
    // The loop's own work is most of the samples: a profile that lost
    // the JavaScript frames would show neither function.
    assert!(ours >= 40.0, "hotLoop only {ours:.1}%");
}
