//! Syscall counting and blocking calls, end to end, on a C program that makes
//! known syscalls (built -O2 -fomit-frame-pointer).

use std::{process::Command, time::Duration};

use tracer_tests::{
    Target, Tracer, assert_near, blocking_calls, functions, require_root, syscall_row,
};

#[test]
fn c_program_exact_counts_and_full_stack() {
    require_root!("c_program_exact_counts_and_full_stack");
    let mut target = Target::start(&mut Command::new(env!("TARGET_SYSCALL_COUNTS")));
    let tracer = Tracer::attach(target.pid, &["--all-syscalls"]);
    target.go();
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let report = &done.report;

    // The target exited during the trace: recording ended with it.
    assert!(
        report["ended_by"]
            .as_str()
            .unwrap()
            .contains("target exited")
    );
    assert_eq!(report["dropped_events"], 0);

    let getppid = syscall_row(report, "getppid").expect("getppid row");
    assert_eq!(getppid["count"], 1000);
    assert_eq!(getppid["errors"], 0);
    let close = syscall_row(report, "close").expect("close row");
    assert_eq!(close["count"], 37);
    assert_eq!(close["errors"], 37);

    // nanosleep(150 ms) three functions deep, unwound without frame pointers
    // after the process had exited.
    let sleeps = blocking_calls(report, "clock_nanosleep");
    assert_eq!(sleeps.len(), 1, "{sleeps:?}");
    let sleep = sleeps[0];
    assert_near(
        "sleep duration",
        sleep["duration_ns"].as_f64().unwrap(),
        150e6,
        0.05,
    );
    assert_eq!(sleep["tid"], target.pid);
    let stack = functions(&sleep["stack"]);
    let position = |name: &str| {
        stack
            .iter()
            .position(|f| f == name)
            .unwrap_or_else(|| panic!("{name} missing from {stack:?}"))
    };
    assert!(position("inner_sleep") < position("middle_call"));
    assert!(position("middle_call") < position("outer_call"));
    assert!(position("outer_call") < position("main"));
    let frame = &sleep["stack"][position("inner_sleep")];
    assert_eq!(frame["kind"], "native");
    assert_eq!(frame["module"], "syscall_counts");
    assert!(
        frame["file"]
            .as_str()
            .unwrap()
            .ends_with("syscall_counts.c")
    );
}

#[test]
fn launched_command_is_traced_from_its_start() {
    require_root!("launched_command_is_traced_from_its_start");
    let tracer = Tracer::start(&[
        "--all-syscalls",
        "--threshold",
        "40ms",
        "--",
        "/usr/bin/python3",
        "-c",
        "import time\nfor _ in range(3): time.sleep(0.05)",
    ]);
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let report = &done.report;
    assert_eq!(report["ended_by"], "target exited (exit status 0)");
    // From the first instruction: the exec of the interpreter is seen.
    assert_eq!(
        syscall_row(report, "execve").expect("execve row")["count"],
        1
    );
    let sleeps = blocking_calls(report, "clock_nanosleep");
    assert_eq!(sleeps.len(), 3, "{sleeps:?}");
    for sleep in sleeps {
        assert_near("sleep", sleep["duration_ns"].as_f64().unwrap(), 50e6, 0.10);
    }
}
