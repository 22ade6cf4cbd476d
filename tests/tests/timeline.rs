//! timeline.json of the demo service with its planted blockers: every stall
//! of the report is on it, on its thread, with its duration.

use std::{fs, process::Command, time::Duration};

use serde_json::Value;
use tracer_tests::{Target, Tracer, pyenv_python, require_root};

/// 1 us: timestamps are in microseconds.
const ROUNDING_NS: f64 = 1_000.0;

#[test]
fn blockers_service_timeline() {
    require_root!("blockers_service_timeline");
    let out = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/blocking_service.py");
    let mut target =
        Target::start(Command::new(pyenv_python("3.11")).args([script, "--rounds", "2", "--wait"]));
    let tracer = Tracer::attach(
        target.pid,
        &["--all-syscalls", "--output", out.path().to_str().unwrap()],
    );
    target.go();
    assert!(target.wait(Duration::from_secs(60)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);

    let text = fs::read_to_string(out.path().join("timeline.json")).unwrap();
    let timeline: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(timeline["displayTimeUnit"], "ms");
    let events = timeline["traceEvents"].as_array().expect("traceEvents");
    assert!(events.len() < 10_000, "{} events", events.len());

    let stalls = done.report["stalls"].as_array().unwrap();
    assert!(stalls.len() >= 8, "2 rounds of 4 blockers: {stalls:?}");
    let slices: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == "stall")
        .collect();
    assert_eq!(slices.len(), stalls.len());
    for stall in stalls {
        let near = |value: &Value, ns: &Value| {
            (value.as_f64().unwrap() * 1e3 - ns.as_f64().unwrap()).abs() <= ROUNDING_NS
        };
        let found = slices.iter().find(|e| {
            e["tid"] == stall["tid"]
                && near(&e["ts"], &stall["start_ns"])
                && near(&e["dur"], &stall["duration_ns"])
        });
        let slice = found.unwrap_or_else(|| panic!("no slice for stall {stall}"));
        let name = slice["name"].as_str().unwrap();
        assert!(name.starts_with("STALL "), "{name}");
        assert_eq!(slice["args"]["cause"], stall["cause"]["description"]);
    }

    // The upstream recv: a blocking call with its socket, inside its stall.
    let recv = events
        .iter()
        .find(|e| e["ph"] == "X" && e["name"] == "recvfrom")
        .expect("a recvfrom slice");
    let target = recv["args"]["target"].as_str().unwrap();
    assert!(target.starts_with("tcp:127.0.0.1:"), "{target}");
    assert!(recv["args"]["off_cpu"].as_str().unwrap().ends_with("ms"));
    assert!(
        slices
            .iter()
            .any(|s| s["name"].as_str().unwrap().contains("blocked in recvfrom")),
        "{slices:?}"
    );
    let code = recv["args"]["code"].to_string();
    assert!(code.contains("query_upstream"), "{code}");

    // Off-CPU spans, named by why they slept: time.sleep(0.25) twice, the
    // subprocess waits twice, the upstream recvs twice (on the loop thread).
    // Short spans may join them: vfork waits for its child's exec (1.3 ms
    // once, which passes the 1 ms streaming minimum).
    let off_cpu = |reason: &str, code: &str| -> Vec<f64> {
        events
            .iter()
            .filter(|e| {
                e["cat"] == "off_cpu"
                    && e["name"] == format!("off-CPU: {reason}")
                    && e["tid"] == done.report["target"]["pid"]
                    && e["args"]["code"].to_string().contains(code)
            })
            .map(|e| e["dur"].as_f64().unwrap() / 1e3)
            .collect()
    };
    for (reason, code, ms) in [
        ("sleep", "fetch_profile", 250.0),
        ("child", "convert_image", 200.0),
        ("socket", "query_upstream", 300.0),
    ] {
        let spans = off_cpu(reason, code);
        let (long, short): (Vec<f64>, Vec<f64>) = spans.iter().partition(|&&s| s >= ms / 2.0);
        assert_eq!(long.len(), 2, "{reason} in {code}: {spans:?}");
        for span in long {
            assert!((span - ms).abs() < 0.1 * ms, "{reason} {span} ms");
        }
        assert!(
            short.iter().all(|&s| s < 20.0),
            "{reason} in {code}: {spans:?}"
        );
    }

    // The loop thread comes first, named, with its activity as counters.
    let loop_tid = &done.report["loops"][0]["tid"];
    let meta = |name: &str| {
        events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == name && &e["tid"] == loop_tid)
            .map(|e| e["args"].clone())
            .unwrap_or_else(|| panic!("no {name} for the loop thread"))
    };
    assert_eq!(meta("thread_sort_index")["sort_index"], 0);
    assert!(
        meta("thread_name")["name"]
            .as_str()
            .unwrap()
            .ends_with("(event loop)")
    );
    let busy: Vec<f64> = events
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == format!("loop {loop_tid} busy"))
        .map(|e| e["args"]["%"].as_f64().unwrap())
        .collect();
    assert!(
        busy.contains(&100.0),
        "the stalls keep the loop busy: {busy:?}"
    );
    assert!(busy.iter().all(|b| (0.0..=100.0).contains(b)), "{busy:?}");
}
