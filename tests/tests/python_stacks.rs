//! Python-level stacks on every CPython here (3.8–3.13 from pyenv, and
//! Debian's static, stripped python3.11): the frames of a thread blocked in a
//! syscall, read at the moment of the call, with the right lines; and the
//! coroutine named in an asyncio stall.

use std::{path::Path, process::Command, time::Duration};

use serde_json::Value;
use tracer_tests::{Target, Tracer, pyenv_python, require_root};

/// time.sleep is clock_nanosleep from 3.11 on, a select before.
const SLEEP_SYSCALLS: &[&str] = &["clock_nanosleep", "select", "pselect6"];

fn script(name: &str) -> String {
    format!("{}/targets/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The 1-based line of the first line of `file` containing `needle`.
fn line_of(file: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(file).expect("read script");
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle") as u64
        + 1
}

/// (function, line) of the Python frames of a stack, innermost first.
fn python_frames(stack: &Value) -> Vec<(String, Option<u64>)> {
    stack
        .as_array()
        .expect("stack")
        .iter()
        .filter(|f| f["kind"] == "python")
        .map(|f| {
            (
                f["function"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64(),
            )
        })
        .collect()
}

/// Traces `python_chain.py` under `interpreter`, attached by pid.
fn chain_on(interpreter: &Path) {
    let path = script("python_chain.py");
    let mut target = Target::start(Command::new(interpreter).arg(&path));
    let tracer = Tracer::attach(target.pid, &["--all-syscalls"]);
    target.go();
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let sleeps: Vec<&Value> = done.report["blocking"]
        .as_array()
        .expect("blocking")
        .iter()
        .filter(|c| SLEEP_SYSCALLS.contains(&c["syscall"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(sleeps.len(), 3, "{interpreter:?}: {sleeps:#?}");
    let sleep_line = line_of(&path, "time.sleep(0.15)  # the blocking call");
    for sleep in sleeps {
        let frames = python_frames(&sleep["stack"]);
        let names: Vec<&str> = frames.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            ["leaf_block", "middle_layer", "outer_handler", "<module>"],
            "{interpreter:?}"
        );
        assert_eq!(
            frames[0].1,
            Some(sleep_line),
            "{interpreter:?}: leaf_block's line"
        );
        let leaf = &sleep["stack"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "python")
            .unwrap()["file"];
        assert!(
            leaf.as_str().unwrap().ends_with("python_chain.py"),
            "{leaf}"
        );
    }
}

/// Traces an asyncio program whose coroutine calls time.sleep: the stall's
/// cause names the coroutine.
fn coroutine_on(interpreter: &Path) {
    let mut target = Target::start(Command::new(interpreter).arg(script("asyncio_sleep.py")));
    let tracer = Tracer::attach(target.pid, &["--all-syscalls"]);
    target.go();
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let stalls = done.report["stalls"].as_array().expect("stalls");
    // The five sleeps. The target warms its code up before tracing, but a
    // page of it read from a cold disk can still block an iteration in a
    // page fault (50 ms once, on a fresh CI machine): such a stall is real
    // and reported as such; no other kind may appear.
    let (faults, sleeps): (Vec<&Value>, Vec<&Value>) = stalls.iter().partition(|s| {
        let cause = &s["cause"];
        cause["syscall"].is_null() || cause["syscall"] == "page fault"
    });
    assert_eq!(sleeps.len(), 5, "{interpreter:?}: {stalls:#?}");
    for fault in &faults {
        let description = fault["cause"]["description"].as_str().unwrap();
        assert!(
            description.contains("page fault"),
            "{interpreter:?}: {fault:#}"
        );
    }
    for stall in sleeps {
        let names: Vec<String> = python_frames(&stall["cause"]["stack"])
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            names.first().map(String::as_str),
            Some("handler"),
            "{names:?} in {stall:#}"
        );
        assert!(names.iter().any(|f| f == "main"), "{names:?} in {stall:#}");
    }
}

macro_rules! interpreter_tests {
    ($($name:ident: $interpreter:expr,)*) => {
        mod chain {
            use super::*;
            $(#[test]
            fn $name() {
                require_root!(concat!("chain::", stringify!($name)));
                chain_on(&$interpreter);
            })*
        }
        mod coroutine {
            use super::*;
            $(#[test]
            fn $name() {
                require_root!(concat!("coroutine::", stringify!($name)));
                coroutine_on(&$interpreter);
            })*
        }
    };
}

interpreter_tests! {
    python3_8: pyenv_python("3.8"),
    python3_9: pyenv_python("3.9"),
    python3_10: pyenv_python("3.10"),
    python3_11: pyenv_python("3.11"),
    python3_12: pyenv_python("3.12"),
    python3_13: pyenv_python("3.13"),
    debian_python3_11: std::path::PathBuf::from("/usr/bin/python3.11"),
}
