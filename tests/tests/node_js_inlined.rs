//! JavaScript frames of compiled code, on Node 18, 20 (the machine's) and
//! 22 (TRACER_NODE_18, TRACER_NODE_22, as `cargo xtask test` sets them):
//! in TurboFan code with a function inlined into it, the inlined function
//! is a frame of its own, at its call's line and column, and the function
//! it was inlined into is at the call that inlined it; in Sparkplug
//! (baseline) code, each frame is at its call's line and column too
//! (node_inlined.js).

use std::{process::Command, time::Duration};

use serde_json::Value;
use tracer_tests::{
    Target, Tracer,
    node::{node, position_of},
    ready_timeout, require_root,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/node_inlined.js");

/// Runs node_inlined.js on Node `major` with `flags`, traced; returns the
/// report and the target's output.
fn trace_inlined(major: &str, flags: &[&str]) -> Option<(Value, Vec<String>)> {
    let node = node(major)?;
    let mut target = Target::start(Command::new(node).args(flags).arg(SCRIPT));
    let tracer = Tracer::attach(target.pid, &[]);
    target.go();
    target.stdout.wait_for("done", ready_timeout());
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    Some((done.report, target.stdout.seen.clone()))
}

/// The JavaScript frames of the planted stalls (200 ms children), from
/// loadQuota's outwards: (function, file, line, column).
fn planted_frames(report: &Value) -> Vec<Vec<(String, Value, Value, Value)>> {
    report["stalls"]
        .as_array()
        .expect("stalls")
        .iter()
        .filter(|s| s["duration_ns"].as_u64() >= Some(150_000_000))
        .map(|stall| {
            let stack = stall["cause"]["stack"].as_array().expect("stack");
            stack
                .iter()
                .filter(|f| f["kind"] == "js")
                .skip_while(|f| f["function"] != "loadQuota")
                .take(2)
                .map(|f| {
                    let name = f["function"].as_str().unwrap_or_default().to_string();
                    (
                        name,
                        f["file"].clone(),
                        f["line"].clone(),
                        f["column"].clone(),
                    )
                })
                .collect()
        })
        .collect()
}

/// Each planted stall names loadQuota at its call of `run`, then
/// checkQuota at its call of loadQuota: line and column.
fn check(major: &str, flags: &[&str], said: impl Fn(&[String]) -> bool) {
    let Some((report, output)) = trace_inlined(major, flags) else {
        return;
    };
    assert!(said(&output), "Node {major} {flags:?}: {output:?}");
    let expected: Vec<(String, Value, Value, Value)> =
        [("loadQuota", "run("), ("checkQuota", "loadQuota(")]
            .into_iter()
            .map(|(function, callee)| {
                let (line, column) = position_of(SCRIPT, &format!("// plant: {function}"), callee);
                (
                    function.to_string(),
                    SCRIPT.into(),
                    line.into(),
                    column.into(),
                )
            })
            .collect();
    let stalls = planted_frames(&report);
    assert_eq!(
        stalls.len(),
        2,
        "Node {major} {flags:?}: {:#}",
        report["stalls"]
    );
    for frames in stalls {
        assert_eq!(frames, expected, "Node {major} {flags:?}");
    }
}

/// Whether V8 said it inlined loadQuota into checkQuota (--trace-turbo-inlining).
fn inlined(output: &[String]) -> bool {
    output.iter().any(|l| {
        l.starts_with("Inlining ")
            && l.contains("<SharedFunctionInfo loadQuota>")
            && l.contains("into ")
            && l.contains("<SharedFunctionInfo checkQuota>")
    })
}

fn check_version(major: &str) {
    // Without OSR, warm() stays interpreted and checkQuota is compiled on
    // its own; with it, V8 sometimes (2 runs in 20 on Node 20) compiles
    // warm's loop first, with both inlined into it, and never checkQuota.
    check(major, &["--no-use-osr", "--trace-turbo-inlining"], inlined);
    // Baseline code only: V8 optimizes nothing, and says so by printing no
    // inlining.
    check(
        major,
        &["--no-opt", "--always-sparkplug", "--trace-turbo-inlining"],
        |output| !inlined(output),
    );
}

#[test]
fn node_20_inlined_and_baseline_frames() {
    require_root!("node_20_inlined_and_baseline_frames");
    check_version("20");
}

#[test]
fn node_18_inlined_and_baseline_frames() {
    require_root!("node_18_inlined_and_baseline_frames");
    check_version("18");
}

#[test]
fn node_22_inlined_and_baseline_frames() {
    require_root!("node_22_inlined_and_baseline_frames");
    check_version("22");
}
