//! Fleets of processes in one trace: a pre-fork server's workers (running
//! before the tracer attached, and forked after), and several pids given
//! with `-p A,B`. Every planted stall must be found once, under the pid of
//! the process that stalled, with its duration (within 10 %, net of the
//! time the tracer saw it wait for a CPU or in other calls).

use std::{collections::BTreeSet, process::Command, time::Duration};

use serde_json::Value;
use tracer_tests::{Target, Tracer, check_planted_stalls, functions, pyenv_python, require_root};

/// Workers the master forks before the tracer attaches (one more after).
const WORKERS_BEFORE: usize = 4;
/// Stalls each worker plants, and how long each blocks (ms).
const STALLS: usize = 3;
const STALL_MS: f64 = 150.0;

fn script(name: &str) -> String {
    format!("{}/targets/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn array(report: &Value, key: &str) -> Vec<Value> {
    report[key].as_array().cloned().unwrap_or_default()
}

/// The pids of the `worker PID` lines seen so far.
fn worker_pids(lines: &[String]) -> BTreeSet<u64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("worker ")?.trim().parse().ok())
        .collect()
}

/// The stalls of process `pid`.
fn stalls_of(report: &Value, pid: u64) -> Vec<Value> {
    array(report, "stalls")
        .into_iter()
        .filter(|s| s["pid"] == pid)
        .collect()
}

/// The stalls of process `pid` that blocked in `syscall` (the planted
/// ones), once every other one is found to be the machine's: waiting for a
/// CPU (2 cores, busy with the workers, the tracer and whatever else runs)
/// or a page of code read from a cold disk. Both are real stalls, reported
/// as such; nothing else may appear.
fn planted(report: &Value, pid: u64, syscall: &str) -> Vec<Value> {
    let (planted, others): (Vec<Value>, Vec<Value>) = stalls_of(report, pid)
        .into_iter()
        .partition(|s| s["cause"]["syscall"] == syscall);
    for other in &others {
        let machine =
            other["cause"]["kind"] == "runqueue" || other["cause"]["syscall"] == "page fault";
        assert!(machine, "pid {pid}: {other:#}\n{}", summary(report));
    }
    planted
}

/// Each of `stalls` blocked in `syscall` for `ms`, within the tolerance once
/// what was not planted is taken out; and there are `count` of them.
fn check(report: &Value, stalls: &[Value], count: usize, syscall: &str, ms: f64) {
    assert_eq!(stalls.len(), count, "{}", summary(report));
    let stalls: Vec<&Value> = stalls.iter().collect();
    check_planted_stalls(report, &stalls, "syscall", Some(syscall), ms);
}

/// Every stall, one line each: shown when an assertion fails.
fn summary(report: &Value) -> String {
    let ms = |v: &Value| v.as_u64().unwrap_or(0) / 1_000_000;
    array(report, "stalls")
        .iter()
        .map(|s| {
            format!(
                "pid {} tid {} at {} ms: {} ms (on CPU {}, blocked {}, run queue {}): {}\n",
                s["pid"],
                s["tid"],
                ms(&s["start_ns"]),
                ms(&s["duration_ns"]),
                ms(&s["on_cpu_ns"]),
                ms(&s["blocked_ns"]),
                ms(&s["runqueue_ns"]),
                s["cause"]["description"]
            )
        })
        .collect()
}

/// The pids of the report's event-loop threads' processes.
fn loop_pids(report: &Value) -> Vec<u64> {
    let mut pids: Vec<u64> = array(report, "loops")
        .iter()
        .filter_map(|l| l["pid"].as_u64())
        .collect();
    pids.sort_unstable();
    pids
}

#[test]
fn prefork_workers_before_and_after_attach() {
    require_root!("prefork_workers_before_and_after_attach");
    let mut master = Target::start(
        Command::new(pyenv_python("3.11"))
            .arg(script("prefork_master.py"))
            .args([WORKERS_BEFORE.to_string(), STALLS.to_string()]),
    );
    let before = worker_pids(&master.stdout.seen);
    assert_eq!(before.len(), WORKERS_BEFORE, "{:?}", master.stdout.seen);
    let tracer = Tracer::attach(master.pid, &["--children"]);
    // One more worker, forked while traced; then every worker stalls.
    master.go();
    let line = master.stdout.wait_for("worker ", Duration::from_secs(30));
    let after = worker_pids(&[line]);
    master.go();
    assert!(master.wait(Duration::from_secs(60)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let report = &done.report;
    assert_eq!(report["ended_by"], "target exited");
    let workers: BTreeSet<u64> = before.union(&after).copied().collect();
    assert_eq!(workers.len(), WORKERS_BEFORE + 1);
    let master_pid = u64::from(master.pid);

    // The master first, then each worker, started by the master.
    let processes = array(report, "processes");
    assert_eq!(processes.len(), 1 + workers.len(), "{processes:#?}");
    assert_eq!(processes[0]["pid"], master_pid);
    assert!(processes[0]["parent"].is_null());
    let listed: BTreeSet<u64> = processes[1..]
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    assert_eq!(listed, workers);
    for process in &processes[1..] {
        assert_eq!(process["parent"], master_pid, "{process:#}");
    }

    // One loop per worker; the master runs none.
    assert_eq!(
        loop_pids(report),
        workers.iter().copied().collect::<Vec<_>>()
    );

    // Each worker's stalls, under its own pid; none in the master.
    for &worker in &workers {
        let stalls = planted(report, worker, "clock_nanosleep");
        check(report, &stalls, STALLS, "clock_nanosleep", STALL_MS);
        for stall in &stalls {
            let stack = functions(&stall["cause"]["stack"]);
            assert!(
                stack.iter().any(|f| f == "blocking_callback"),
                "worker {worker}: {stack:?}"
            );
        }
    }
    assert!(
        stalls_of(report, master_pid).is_empty(),
        "{}",
        summary(report)
    );
}

/// `asyncio_sleep.py` blocks its loop 5 times for 200 ms once told to go.
const SLEEPS: usize = 5;
const SLEEP_MS: f64 = 200.0;

#[test]
fn several_pids_in_one_trace() {
    require_root!("several_pids_in_one_trace");
    let python = pyenv_python("3.11");
    let mut first = Target::start(Command::new(&python).arg(script("asyncio_sleep.py")));
    let mut second = Target::start(Command::new(&python).arg(script("asyncio_sleep.py")));
    let pids = format!("{},{}", first.pid, second.pid);
    let tracer = Tracer::start(&["-p", &pids]);
    first.go();
    second.go();
    assert!(first.wait(Duration::from_secs(30)).success());
    // The first target's exit does not end the recording: the second's does.
    assert!(second.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let report = &done.report;
    assert_eq!(report["ended_by"], "every target exited");
    let (a, b) = (u64::from(first.pid), u64::from(second.pid));
    assert_eq!(report["target"]["pid"], a);
    let processes = array(report, "processes");
    let listed: Vec<(u64, bool)> = processes
        .iter()
        .map(|p| (p["pid"].as_u64().unwrap_or(0), p["parent"].is_null()))
        .collect();
    assert_eq!(listed, [(a, true), (b, true)], "{processes:#?}");
    let mut expected = vec![a, b];
    expected.sort_unstable();
    assert_eq!(loop_pids(report), expected);
    for pid in [a, b] {
        let sleeps = planted(report, pid, "clock_nanosleep");
        check(report, &sleeps, SLEEPS, "clock_nanosleep", SLEEP_MS);
    }
}
