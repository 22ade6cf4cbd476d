//! The tracer's account of asyncio Tasks against asyncio's own, on the
//! target of tests/tasks.rs (`asyncio_tasks.py`: stalls planted in the
//! tasks `slow-sleep`, `slow-recv`, `slow-cpu` and in a plain callback).
//! - Debug mode (`PYTHONASYNCIODEBUG=1`) logs each step of a task or
//!   callback longer than 100 ms, "Executing <Task ... name='slow-recv' ...>
//!   took 0.151 seconds": the tracer names the same task for a stall as
//!   long, within 10 %, on every interpreter (and uvloop, whose debug mode
//!   times task steps only, on 3.12 and 3.14).
//! - 3.14's `python -m asyncio pstree PID`, taken while `slow-sleep`
//!   stalls, shows the tasks awaiting it: the tracer's awaited-by chain of
//!   that stall is the same.

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tracer_tests::{
    Target, Tracer, interpreters::Python, planted_stall_threshold, ready_timeout, require_root,
    timing_tolerance, trace_target,
};

const SCRIPT: &str = "asyncio_tasks.py";

/// What debug mode logged of one slow step.
#[derive(Debug)]
struct SlowStep {
    /// The task's name; `None` for a plain callback.
    task: Option<String>,
    /// The callback's function (a `<Handle f(...) ...>`).
    callback: Option<String>,
    seconds: f64,
}

/// The "Executing <...> took N seconds" lines of a debug-mode log.
fn slow_steps(log: &str) -> Vec<SlowStep> {
    log.lines()
        .filter_map(|line| {
            let executing = &line[line.find("Executing <")? + "Executing <".len()..];
            let took = &executing[executing.rfind(" took ")? + " took ".len()..];
            let seconds = took.strip_suffix(" seconds")?.parse().ok()?;
            let between = |start: &str, end: char| {
                let rest = &executing[executing.find(start)? + start.len()..];
                Some(rest[..rest.find(end)?].to_string())
            };
            Some(if executing.starts_with("Task ") {
                SlowStep {
                    task: Some(between("name='", '\'')?),
                    callback: None,
                    seconds,
                }
            } else {
                SlowStep {
                    task: None,
                    callback: Some(between("Handle ", '(')?),
                    seconds,
                }
            })
        })
        .collect()
}

/// The tracer's stalls of `step`: those in its task, or (a callback) in no
/// task with its function on the stack.
fn stalls_of<'a>(report: &'a Value, step: &SlowStep) -> Vec<&'a Value> {
    report["stalls"]
        .as_array()
        .expect("stalls")
        .iter()
        .filter(|stall| {
            let task = &stall["cause"]["task"];
            match (&step.task, &step.callback) {
                (Some(name), _) => task["name"].as_str() == Some(name),
                (None, Some(function)) => {
                    task.is_null()
                        && stall["cause"]["stack"].as_array().is_some_and(|frames| {
                            frames
                                .iter()
                                .any(|f| f["kind"] == "python" && f["function"] == *function)
                        })
                }
                (None, None) => false,
            }
        })
        .collect()
}

fn debug_mode_agrees(python: &Python, event_loop: &str) {
    let Some(mut command) = python.command(SCRIPT, &[event_loop]) else {
        return;
    };
    let log = tempfile::NamedTempFile::new().expect("a log file");
    command
        .env("PYTHONASYNCIODEBUG", "1")
        .stderr(Stdio::from(log.reopen().expect("reopen the log")));
    let done = trace_target(command, &[]);
    let text = std::fs::read_to_string(log.path()).expect("read the log");
    let steps = slow_steps(&text);
    for planted in ["slow-sleep", "slow-recv", "slow-cpu"] {
        assert!(
            steps.iter().any(|s| s.task.as_deref() == Some(planted)),
            "debug mode logged no slow step of {planted}: {text}"
        );
    }
    // uvloop's debug mode times the steps of tasks, not plain callbacks.
    assert!(
        event_loop == "uvloop"
            || steps
                .iter()
                .any(|s| s.callback.as_deref() == Some("blocking_callback")),
        "debug mode logged no slow callback: {text}"
    );
    for step in &steps {
        let stalls = stalls_of(&done.report, step);
        let all: Vec<(&Value, &Value)> = done.report["stalls"]
            .as_array()
            .expect("stalls")
            .iter()
            .map(|s| (&s["duration_ns"], &s["cause"]["description"]))
            .collect();
        assert_eq!(
            stalls.len(),
            1,
            "{step:?}: {stalls:#?} of {all:#?}; log {text}"
        );
        let ms = stalls[0]["duration_ns"].as_f64().unwrap_or(0.0) / 1e6;
        let expected = step.seconds * 1e3;
        let tolerance = timing_tolerance(0.1);
        assert!(
            (ms - expected).abs() <= tolerance * expected,
            "stall of {ms} ms, debug mode {expected} ms for {step:?}: {:#}",
            stalls[0]
        );
        eprintln!("{step:?}: tracer {ms:.1} ms");
    }
}

/// The tasks awaiting `task` in a `python -m asyncio pstree` output, nearest
/// first: the tasks (`(T) name`) above it in the tree.
fn pstree_chain(tree: &str, task: &str) -> Vec<String> {
    let depth = |line: &str| line.chars().position(|c| c == '└' || c == '├');
    let name = |line: &str| line.split_once("(T) ").map(|(_, n)| n.trim().to_string());
    let lines: Vec<&str> = tree.lines().collect();
    let Some(at) = lines.iter().position(|l| name(l).as_deref() == Some(task)) else {
        panic!("no task {task} in {tree}");
    };
    let mut chain = Vec::new();
    let mut below = depth(lines[at]).expect("a tree line");
    for line in lines[..at].iter().rev() {
        if let (Some(d), Some(awaiter)) = (depth(line), name(line))
            && d < below
        {
            chain.push(awaiter);
            below = d;
        }
    }
    chain
}

fn pstree_agrees(event_loop: &str) {
    let python = Python::Sid;
    let Some(mut command) = python.command(SCRIPT, &[event_loop]) else {
        return;
    };
    // Long enough for pstree to start and look during the stall.
    command.env("TASKS_STALL", "1.0").env("TASKS_ANNOUNCE", "1");
    let mut target = Target::start(&mut command);
    let tracer = Tracer::attach(target.pid, &["--threshold", planted_stall_threshold()]);
    target.go();
    target
        .stdout
        .wait_for("stalling slow-sleep", ready_timeout());
    let pid = target.pid.to_string();
    let output = python
        .beside(target.pid, &["-m", "asyncio", "pstree", &pid])
        .output()
        .expect("run python3.14 -m asyncio pstree");
    let tree = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "pstree: {tree} {output:?}");
    assert!(
        target
            .wait(ready_timeout() + Duration::from_secs(4))
            .success(),
        "target failed"
    );
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let expected = pstree_chain(&tree, "slow-sleep");
    assert_eq!(expected, ["serve", "main"], "{tree}");
    let stall = done.report["stalls"]
        .as_array()
        .expect("stalls")
        .iter()
        .find(|s| s["cause"]["task"]["name"] == "slow-sleep")
        .unwrap_or_else(|| panic!("no stall in slow-sleep: {:#}", done.report["stalls"]));
    let chain: Vec<&str> = stall["cause"]["task"]["awaited_by"]
        .as_array()
        .expect("awaited_by")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(chain, expected, "pstree {tree}; tracer {stall:#}");
    eprintln!("pstree: slow-sleep <- {expected:?}; tracer: {chain:?}");
}

/// Debug-mode tests for each (interpreter, loop).
macro_rules! debug_mode_tests {
    ($($name:ident: $interpreter:expr, $event_loop:expr;)*) => {
        $(#[test]
        fn $name() {
            require_root!(stringify!($name));
            debug_mode_agrees(&$interpreter, $event_loop);
        })*
    };
}

debug_mode_tests! {
    debug_mode_3_8: Python::pyenv("3.8"), "asyncio";
    debug_mode_3_9: Python::pyenv("3.9"), "asyncio";
    debug_mode_3_10: Python::pyenv("3.10"), "asyncio";
    debug_mode_3_11: Python::pyenv("3.11"), "asyncio";
    debug_mode_3_12: Python::pyenv("3.12"), "asyncio";
    debug_mode_3_13: Python::pyenv("3.13"), "asyncio";
    debug_mode_debian_3_11: Python::Host("/usr/bin/python3.11".into()), "asyncio";
    debug_mode_sid_3_14: Python::Sid, "asyncio";
    debug_mode_uvloop_3_12: Python::pyenv("3.12"), "uvloop";
    debug_mode_uvloop_sid_3_14: Python::Sid, "uvloop";
}

#[test]
fn pstree_agrees_3_14() {
    require_root!("pstree_agrees_3_14");
    pstree_agrees("asyncio");
}

#[test]
fn pstree_agrees_3_14_uvloop() {
    require_root!("pstree_agrees_3_14_uvloop");
    pstree_agrees("uvloop");
}
