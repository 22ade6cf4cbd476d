//! CPU and off-CPU profiles end to end: shares of CPU in a C program without
//! frame pointers, the sampler against the scheduler's accounting, wait
//! reasons of the asyncio blockers service, a Python function by name.

use std::{collections::HashMap, path::Path, process::Command, time::Duration};

use serde_json::Value;
use tracer_tests::{
    Target, Tracer, assert_near, assert_near_or_stolen, pyenv_python, require_root, stolen_ns,
};

/// Reads a folded file: (stack, count) lines, outermost frame first.
fn folded(path: &Path) -> Vec<(Vec<String>, u64)> {
    let text = std::fs::read_to_string(path).expect("folded file");
    text.lines()
        .map(|line| {
            let (stack, count) = line.rsplit_once(' ').expect("count");
            let frames = stack.split(';').map(str::to_string).collect();
            (frames, count.parse().expect("number"))
        })
        .collect()
}

/// The share (0..1) of counts whose stack has a frame satisfying `is`.
fn inclusive_share(stacks: &[(Vec<String>, u64)], is: impl Fn(&str) -> bool) -> f64 {
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    let with: u64 = stacks
        .iter()
        .filter(|(frames, _)| frames.iter().any(|f| is(f)))
        .map(|(_, n)| n)
        .sum();
    with as f64 / total as f64
}

/// A traced run: the report, the output directory, the target's pid and
/// what it printed.
struct Run {
    report: Value,
    out: tempfile::TempDir,
    pid: u32,
    stdout: Vec<String>,
}

/// Traces `command` (which prints ready and waits for go) with extra args,
/// into an output directory.
fn trace_to_dir(command: &mut Command, args: &[&str]) -> Run {
    let out = tempfile::tempdir().expect("temp dir");
    let mut target = Target::start(command);
    let dir = out.path().to_str().expect("utf-8 path").to_string();
    let mut all = vec!["--all-syscalls", "--output", &dir];
    all.extend_from_slice(args);
    let tracer = Tracer::attach(target.pid, &all);
    target.go();
    assert!(target.wait(Duration::from_secs(60)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    Run {
        report: done.report,
        out,
        pid: target.pid,
        stdout: target.stdout.rest(),
    }
}

#[test]
fn c_program_cpu_shares_and_sampler_agrees_with_scheduler() {
    require_root!("c_program_cpu_shares_and_sampler_agrees_with_scheduler");
    let stolen_before = stolen_ns();
    let Run {
        report,
        out,
        pid,
        stdout,
    } = trace_to_dir(
        &mut Command::new(env!("TARGET_CPU_SPLIT")),
        &["--rate", "499"],
    );
    let stolen = stolen_ns() - stolen_before;
    let stacks = folded(&out.path().join("cpu.folded"));
    let heavy = inclusive_share(&stacks, |f| f == "heavy_path");
    let light = inclusive_share(&stacks, |f| f == "light_path");
    assert!((heavy - 0.75).abs() <= 0.08, "heavy_path {heavy:.3}");
    assert!((light - 0.25).abs() <= 0.08, "light_path {light:.3}");
    // Both reach the CPU through the shared helper, under main.
    assert!(inclusive_share(&stacks, |f| f == "shared_helper") > 0.9);
    assert!(inclusive_share(&stacks, |f| f == "main") > 0.95);
    assert!(out.path().join("cpu.svg").exists());
    let thread = report["cpu"]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == pid)
        .expect("the target's thread");
    let scheduler = thread["cpu_ns"].as_f64().unwrap();
    let sampler = thread["sampled_cpu_ns"].as_f64().unwrap();
    // The target's own account of its CPU time (it waited for the tracer
    // before starting to count, so this is all traced time).
    let own: f64 = stdout
        .iter()
        .find_map(|l| l.strip_prefix("cpu_ns "))
        .expect("cpu_ns line")
        .parse()
        .unwrap();
    assert_near_or_stolen(
        "scheduler vs the target's own CPU time",
        scheduler,
        own,
        0.03,
        stolen,
    );
    assert_near_or_stolen("sampled vs scheduler CPU", sampler, scheduler, 0.05, stolen);
}

#[test]
fn kernel_time_is_sampled_inside_the_syscall() {
    require_root!("kernel_time_is_sampled_inside_the_syscall");
    let Run { out, .. } = trace_to_dir(
        &mut Command::new(env!("TARGET_ZERO_READS")),
        &["--rate", "499"],
    );
    let stacks = folded(&out.path().join("cpu.folded"));
    let total: u64 = stacks.iter().map(|(_, n)| n).sum();
    assert!(total > 500, "{total} samples in 2 s at 499 Hz");
    // Clearing the buffer is the kernel's work, inside read(2), called from
    // read_zeros: the kernel's frames sit beneath the user frames.
    let in_read = inclusive_share(&stacks, |f| f.starts_with("ksys_read"));
    assert!(in_read > 0.8, "ksys_read in {in_read:.3} of the samples");
    assert!(inclusive_share(&stacks, |f| f == "read_zeros") > 0.8);
}

#[test]
fn python_function_dominates_cpu_flame_graph() {
    require_root!("python_function_dominates_cpu_flame_graph");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/python_crunch.py");
    let out = trace_to_dir(
        Command::new(pyenv_python("3.12")).arg(script),
        &["--rate", "499"],
    )
    .out;
    let stacks = folded(&out.path().join("cpu.folded"));
    let share = inclusive_share(&stacks, |f| {
        f.starts_with("crunch (") && f.contains("python_crunch.py:")
    });
    assert!(share > 0.9, "crunch has {share:.3} of the samples");
    let svg = std::fs::read_to_string(out.path().join("cpu.svg")).unwrap();
    assert!(svg.contains("crunch (") && svg.contains("python_crunch.py"));
}

#[test]
fn asyncio_service_off_cpu_by_reason() {
    require_root!("asyncio_service_off_cpu_by_reason");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/blocking_service.py");
    let Run {
        report, out, pid, ..
    } = trace_to_dir(
        Command::new(pyenv_python("3.11"))
            .arg(script)
            .args(["--rounds", "2", "--wait"]),
        &[],
    );
    // Off-CPU time of the loop thread, by reason.
    let mut by_reason: HashMap<String, f64> = HashMap::new();
    for row in report["off_cpu"].as_array().unwrap() {
        if row["tid"] == pid {
            *by_reason
                .entry(row["reason"].as_str().unwrap().to_string())
                .or_default() += row["total_ns"].as_f64().unwrap();
        }
    }
    // Two rounds: 2 x recv from the 300 ms upstream, 2 x time.sleep(0.25),
    // 2 x waiting for `sleep 0.2`; the rest of the time the loop idles.
    assert_near("socket", by_reason["socket"], 2.0 * 300e6, 0.10);
    assert_near("sleep", by_reason["sleep"], 2.0 * 250e6, 0.10);
    assert_near("child", by_reason["child"], 2.0 * 200e6, 0.10);
    assert!(
        by_reason["idle"] > 2.0e9,
        "idle {:?}",
        by_reason.get("idle")
    );
    let folded = std::fs::read_to_string(out.path().join("offcpu.folded")).unwrap();
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with("socket;") && l.contains("query_upstream"))
    );
    assert!(folded.lines().any(|l| l.starts_with("idle;")));
    assert!(out.path().join("offcpu.svg").exists());
}
