//! pprof profiles end to end: the asyncio blockers service traced with
//! `--output DIR`, then `cpu.pb.gz` and `offcpu.pb.gz` read by the reader
//! Pyroscope and Parca follow, `go tool pprof` (Debian's golang-go). Its top
//! functions must be the report's, with the same sample counts, and the
//! off-CPU time under each wait reason the report's total for that reason.

use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
    process::Command,
    time::Duration,
};

use serde_json::Value;
use tracer_tests::{Target, Tracer, pyenv_python, require_root};

/// Whether `go` runs here. Under CI=true its absence is a failure: CI
/// installs golang-go (`cargo xtask setup`) and must run this test.
fn have_go(test: &str) -> bool {
    Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|out| out.status.success())
        || tracer_tests::skip(
            test,
            "needs `go` to run go tool pprof (apt-get install -y golang-go)",
        )
}

/// `go tool pprof ARGS FILE`'s output; it must succeed.
fn pprof(args: &[&str], file: &Path) -> String {
    let out = Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .output()
        .expect("run go tool pprof");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof {args:?} {} failed: {}\n{stdout}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "$ go tool pprof {} {}\n{stdout}",
        args.join(" "),
        file.display()
    );
    stdout
}

/// The rows of `-top`: (flat, function), most flat first. Values are plain
/// numbers with `-sample_index=samples` (counts).
fn top_rows(top: &str) -> Vec<(u64, String)> {
    top.lines()
        .skip_while(|line| !line.trim_start().starts_with("flat"))
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields.len() >= 6, "a -top row: {line:?}");
            let flat = fields[0].parse().expect("a count (-sample_index=samples)");
            (flat, fields[5..].join(" "))
        })
        .collect()
}

/// `N` of `... of N total` in `-top`'s header.
fn top_total(top: &str) -> u64 {
    top.lines()
        .find_map(|line| {
            line.strip_suffix(" total")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .expect("a `... of N total` line")
}

/// The samples of `-raw`: (values, labels) each.
fn raw_samples(raw: &str) -> Vec<(Vec<i64>, HashMap<String, String>)> {
    let mut samples: Vec<(Vec<i64>, HashMap<String, String>)> = Vec::new();
    // After "Samples:" and the sample types, each sample is "  V1 V2: LOC
    // LOC ..." and then, indented further, its labels "key:[value] ...";
    // an unindented line ("Locations") ends them.
    let lines = raw.lines().skip_while(|line| *line != "Samples:").skip(2);
    for line in lines.take_while(|line| line.starts_with(' ')) {
        if !line.contains(":[") {
            let (values, _) = line.split_once(':').expect("values: locations");
            let values = values
                .split_whitespace()
                .map(|v| v.parse().expect("a sample value"))
                .collect();
            samples.push((values, HashMap::new()));
        } else if let Some((_, labels)) = samples.last_mut() {
            // Values may hold spaces ("page fault"): split at "]".
            for pair in line.trim().split_terminator(']') {
                let (key, value) = pair.trim().split_once(":[").expect("key:[value]");
                labels.insert(key.to_string(), value.to_string());
            }
        }
    }
    samples
}

/// A function of the report's top list as pprof names it: Python
/// functions come as `name (file)` there and as `name` in pprof.
fn bare_name(function: &str) -> &str {
    match function.rsplit_once(" (") {
        Some((name, file)) if file.ends_with(')') => name,
        _ => function,
    }
}

fn trace_demo(dir: &Path) -> (Value, u32) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/blocking_service.py");
    let mut target = Target::start(
        Command::new(pyenv_python("3.11"))
            .arg(script)
            .args(["--rounds", "2", "--wait"]),
    );
    let dir = dir.to_str().expect("utf-8 path");
    let tracer = Tracer::attach(
        target.pid,
        &["--all-syscalls", "--rate", "499", "--output", dir],
    );
    target.go();
    assert!(target.wait(Duration::from_secs(60)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    (done.report, target.pid)
}

#[test]
fn go_tool_pprof_reads_profiles_that_agree_with_the_report() {
    let test = "go_tool_pprof_reads_profiles_that_agree_with_the_report";
    require_root!(test);
    if !have_go(test) {
        return;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let (report, pid) = trace_demo(out.path());
    let cpu = out.path().join("cpu.pb.gz");
    let offcpu = out.path().join("offcpu.pb.gz");
    // Both open as gzip files (magic 1f 8b) and read in the default view.
    for file in [&cpu, &offcpu] {
        let bytes = std::fs::read(file).expect("profile written");
        assert_eq!(
            bytes.get(..2),
            Some(&[0x1f, 0x8b][..]),
            "{}",
            file.display()
        );
    }
    assert!(pprof(&["-top", "-nodecount=20"], &cpu).contains("Type: cpu"));
    assert!(pprof(&["-top", "-nodecount=20"], &offcpu).contains("Type: offcpu"));

    // CPU: the same samples, and the report's top functions by self
    // samples are pprof's by flat samples, count for count.
    let top = pprof(&["-top", "-nodecount=20", "-sample_index=samples"], &cpu);
    let samples = report["cpu"]["samples"].as_u64().unwrap();
    assert!(samples > 40, "{samples} CPU samples at 499 Hz");
    assert_eq!(top_total(&top), samples);
    let mut expected: HashMap<&str, u64> = HashMap::new();
    for function in report["cpu"]["top"].as_array().unwrap() {
        let name = bare_name(function["function"].as_str().unwrap());
        *expected.entry(name).or_default() += function["self"].as_u64().unwrap();
    }
    let mut expected: Vec<(u64, &str)> = expected.into_iter().map(|(n, s)| (s, n)).collect();
    expected.sort_by(|a, b| b.cmp(a));
    let rows = top_rows(&top);
    let flats: Vec<u64> = rows.iter().take(3).map(|(flat, _)| *flat).collect();
    let selfs: Vec<u64> = expected.iter().take(3).map(|(s, _)| *s).collect();
    assert_eq!(flats, selfs, "top 3 flat vs self samples\n{top}");
    // The names of the top 3, leaving out those tied with the 4th (their
    // order is arbitrary on both sides).
    let fourth = expected.get(3).map_or(0, |(s, _)| *s);
    let names = |list: Vec<(u64, &str)>| -> BTreeSet<String> {
        list.into_iter()
            .take(3)
            .filter(|(count, _)| *count > fourth)
            .map(|(_, name)| name.to_string())
            .collect()
    };
    let pprof_names = names(rows.iter().map(|(f, n)| (*f, n.as_str())).collect());
    let report_names = names(expected.clone());
    assert!(
        !report_names.is_empty(),
        "top functions all tied: {expected:?}"
    );
    assert_eq!(pprof_names, report_names, "\n{top}");
    // The demo's CPU hog leads both.
    assert_eq!(expected[0].1, "render_report.<locals>.<genexpr>");

    // Off-CPU: the time under each wait_reason label is the report's.
    let raw = pprof(&["-raw"], &offcpu);
    let samples = raw_samples(&raw);
    let mut by_label: HashMap<String, f64> = HashMap::new();
    for (values, labels) in &samples {
        assert_eq!(values.len(), 2, "waits and nanoseconds");
        let reason = labels.get("wait_reason").expect("a wait_reason label");
        *by_label.entry(reason.clone()).or_default() += values[1] as f64;
    }
    let mut by_reason: HashMap<String, f64> = HashMap::new();
    for row in report["off_cpu"].as_array().unwrap() {
        let reason = row["reason"].as_str().unwrap().to_string();
        *by_reason.entry(reason).or_default() += row["total_ns"].as_f64().unwrap();
    }
    by_reason.retain(|_, ns| *ns > 0.0);
    for reason in ["socket", "sleep", "child", "idle"] {
        assert!(
            by_reason.contains_key(reason),
            "no {reason} in {by_reason:?}"
        );
    }
    let mut reasons: Vec<&String> = by_reason.keys().collect();
    reasons.sort();
    let mut labelled: Vec<&String> = by_label.keys().collect();
    labelled.sort();
    assert_eq!(labelled, reasons);
    for (reason, ns) in &by_reason {
        let got = by_label[reason];
        assert!(
            (got - ns).abs() <= 0.02 * ns,
            "{reason}: pprof {got} ns, report {ns} ns"
        );
    }
    // The loop thread's waits name it, as a loop.
    let thread = format!("/{pid}");
    assert!(samples.iter().any(|(_, labels)| {
        labels.get("wait_reason").map(String::as_str) == Some("socket")
            && labels.get("thread").is_some_and(|t| t.ends_with(&thread))
            && labels.get("loop").map(String::as_str) == Some("yes")
    }));
}
