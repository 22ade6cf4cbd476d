//! `--metrics ADDR` end to end: a real Prometheus scrapes the tracer every
//! second while an asyncio service plants stalls; PromQL over its HTTP API
//! must show the planted stalls (exact count), their time (within 10 % of
//! the tracer's own JSON report of the same run, and of what was planted),
//! and an iteration-time p99 in the planted stalls' bucket or above. And
//! the `task` label: the stalls of named asyncio Tasks counted by task, as
//! the JSON report of the same run counts them.

use std::{
    collections::BTreeMap,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{
    Target, Tracer, planted_stall_threshold,
    prometheus::{Prometheus, free_port, have_prometheus, http_get},
    pyenv_python, require_root, timing_tolerance,
};

const PLANTED: u64 = 6;
const PLANTED_MS: u64 = 150;
/// The lower bound of the classic bucket a 150 ms iteration falls in
/// (buckets are powers of two nanoseconds: 2^27 ns = 134 ms).
const PLANTED_BUCKET_LOW_S: f64 = 0.134_217_728;

fn planted_stalls_target() -> Target {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/planted_stalls.py");
    Target::start(Command::new(pyenv_python("3.11")).arg(script))
}

/// A tracer attached to `target` serving metrics on a free loopback port,
/// and that address.
fn serving_metrics(target: &Target) -> (Tracer, String) {
    let endpoint = format!("127.0.0.1:{}", free_port());
    let threshold = planted_stall_threshold();
    let args = ["--metrics", &endpoint, "--threshold", threshold];
    (Tracer::attach(target.pid, &args), endpoint)
}

/// The report's stalls that slept in clock_nanosleep (the planted ones).
fn planted_in_report(report: &Value) -> Vec<&Value> {
    report["stalls"]
        .as_array()
        .expect("stalls")
        .iter()
        .filter(|s| s["cause"]["syscall"] == "clock_nanosleep")
        .collect()
}

#[test]
fn prometheus_sees_the_planted_stalls() {
    let test = "prometheus_sees_the_planted_stalls";
    require_root!(test);
    if !have_prometheus(test) {
        return;
    }
    let mut target = planted_stalls_target();
    let (tracer, endpoint) = serving_metrics(&target);
    let prometheus = Prometheus::scraping(&endpoint);
    let scraped = r#"up{job="tracer"}"#;
    prometheus.wait_until("scraping the tracer", Duration::from_secs(30), |p| {
        p.scalar(scraped) == Some(1.0)
    });
    target.send(&format!("stalls {PLANTED} {PLANTED_MS}"));
    target.stdout.wait_for("planted", Duration::from_secs(30));

    let count = r#"sum(tracer_stalls_total{cause="syscall",syscall="clock_nanosleep"})"#;
    prometheus.wait_until("showing the planted stalls", Duration::from_secs(30), |p| {
        p.scalar(count) == Some(PLANTED as f64)
    });
    let seconds = prometheus
        .scalar(r#"sum(tracer_stall_seconds_total{cause="syscall",syscall="clock_nanosleep"})"#)
        .expect("stall seconds");
    let p99 = prometheus
        .scalar("histogram_quantile(0.99, sum by (le) (tracer_loop_iteration_seconds_bucket))")
        .expect("iteration p99");
    let blocking = prometheus
        .scalar(r#"sum(tracer_blocking_calls_total{syscall="clock_nanosleep",target_kind="none"})"#)
        .expect("blocking calls");
    let events = prometheus.scalar("tracer_events_total").expect("events");
    let rss = prometheus
        .scalar("tracer_resident_memory_bytes")
        .expect("rss");

    let done = tracer.interrupt();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let planted = planted_in_report(&done.report);
    assert_eq!(planted.len() as u64, PLANTED, "the report's planted stalls");
    let report_seconds: f64 = planted
        .iter()
        .map(|s| s["duration_ns"].as_f64().unwrap_or(0.0) * 1e-9)
        .sum();
    let tolerance = timing_tolerance(0.10);
    assert!(
        (seconds - report_seconds).abs() <= tolerance * report_seconds,
        "Prometheus {seconds:.3} s of stalls, the report {report_seconds:.3} s"
    );
    let planted_s = (PLANTED * PLANTED_MS) as f64 * 1e-3;
    assert!(
        (seconds - planted_s).abs() <= tolerance * planted_s,
        "Prometheus {seconds:.3} s of stalls, planted {planted_s:.3} s"
    );
    assert!(
        p99 >= PLANTED_BUCKET_LOW_S,
        "iteration p99 {p99} s is below the planted {PLANTED_MS} ms stalls' bucket"
    );
    assert_eq!(blocking, PLANTED as f64, "blocking clock_nanosleep calls");
    assert!(events >= PLANTED as f64, "tracer_events_total {events}");
    assert!(rss > 1e6, "tracer_resident_memory_bytes {rss}");
    drop(target);
}

#[test]
fn a_taken_port_is_one_error_line() {
    let test = "a_taken_port_is_one_error_line";
    require_root!(test);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let out = Command::new(tracer_tests::tracer_bin())
        .args(["--pid", &std::process::id().to_string(), "--metrics", &addr])
        .output()
        .expect("run tracer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&format!("cannot serve --metrics on {addr}")),
        "{stderr}"
    );
    assert!(lines[0].contains("in use"), "{stderr}");
}

/// Stall counts by (cause, task) in an exposition: the `tracer_stalls_total`
/// samples summed over threads and syscalls; "" where no task label.
fn stalls_by_task(exposition: &str) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix("tracer_stalls_total{") else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").expect("a sample line");
        let label = |name: &str| {
            labels
                .split("\",")
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        *counts.entry((label("cause"), label("task"))).or_default() +=
            value.parse::<u64>().expect("a count");
    }
    counts
}

/// The same counts from a JSON report's stalls (task names as patterns).
fn report_stalls_by_task(report: &Value) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for stall in report["stalls"].as_array().expect("stalls") {
        let cause = stall["cause"]["kind"].as_str().expect("kind").to_string();
        let task = stall["cause"]["task"]["name"]
            .as_str()
            .map(|name| {
                // Each run of digits as one `*`.
                let mut pattern = String::new();
                for c in name.chars() {
                    match c.is_ascii_digit() {
                        true if pattern.ends_with('*') => {}
                        true => pattern.push('*'),
                        false => pattern.push(c),
                    }
                }
                pattern
            })
            .unwrap_or_default();
        *counts.entry((cause, task)).or_default() += 1;
    }
    counts
}

#[test]
fn stalls_are_counted_by_task() {
    require_root!("stalls_are_counted_by_task");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/asyncio_tasks.py");
    let mut target = Target::start(
        Command::new(pyenv_python("3.11"))
            .arg(script)
            .env("TASKS_HOLD", "1"),
    );
    let (tracer, endpoint) = serving_metrics(&target);
    target.go();
    target.stdout.wait_for("held", Duration::from_secs(60));
    // Readings are taken once a second: two equal scrapes 1.2 s apart
    // hold every stall.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = BTreeMap::new();
    let scraped = loop {
        thread::sleep(Duration::from_millis(1200));
        let (status, body) = http_get(&endpoint, "/metrics").expect("scrape the tracer");
        assert_eq!(status, 200, "{body}");
        let counts = stalls_by_task(&body);
        if counts == last && !counts.is_empty() {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "the stall counts never settled: {counts:?}"
        );
        last = counts;
    };
    target.send("exit");
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    assert_eq!(scraped, report_stalls_by_task(&done.report));
    for planted in ["slow-sleep", "slow-recv", "slow-cpu"] {
        assert!(
            scraped.keys().any(|(_, task)| task == planted),
            "no stall of task {planted}: {scraped:?}"
        );
    }
    // The plain callback's stall: in no task.
    assert!(
        scraped.keys().any(|(_, task)| task.is_empty()),
        "{scraped:?}"
    );
}
