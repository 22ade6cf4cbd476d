//! Node.js stacks and threads, named right: JIT code (anonymous executable
//! memory) is named from the process's perf map where it writes one (`node
//! --perf-basic-prof`), else from V8's heap (JavaScript functions), else
//! `[JIT] 0x…` in `[anon]`; never the nearest symbol of another module
//! (`_end [node]`). libuv's threadpool and Node's
//! platform workers waiting for work are idle, not blocking calls; a
//! threadpool worker blocked inside a task is a blocking call.

use std::{fs::OpenOptions, io::Write, path::Path, process::Command, thread, time::Duration};

use serde_json::Value;
use tracer_tests::{
    Target, Tracer, assert_near, functions, ready_timeout, require_root, timing_tolerance,
};

fn target_script(name: &str) -> String {
    format!("{}/targets/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Attaches with `args`, lets the target run to its end, returns the report.
fn trace_to_end(target: &mut Target, args: &[&str]) -> Value {
    let tracer = Tracer::attach(target.pid, args);
    target.go();
    assert!(target.wait(Duration::from_secs(60)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    done.report
}

/// The stalls on the CPU (spinForRender's).
fn cpu_stalls(report: &Value) -> Vec<&Value> {
    report["stalls"]
        .as_array()
        .map(|all| all.iter().filter(|s| s["cause"]["kind"] == "cpu").collect())
        .unwrap_or_default()
}

fn perf_map(pid: u32) -> String {
    format!("/tmp/perf-{pid}.map")
}

#[test]
fn node_jit_frames_without_a_perf_map() {
    require_root!("node_jit_frames_without_a_perf_map");
    let mut target = Target::start(Command::new("node").arg(target_script("node_frames.js")));
    assert!(!Path::new(&perf_map(target.pid)).exists());
    let report = trace_to_end(&mut target, &[]);
    let cpu = cpu_stalls(&report);
    assert_eq!(cpu.len(), 3, "{:#}", report["stalls"]);
    for stall in cpu {
        let stack = stall["cause"]["stack"].as_array().expect("stack");
        // spinForRender runs as JIT code, named from V8's heap (no perf
        // map): its script, and a line of its body with the column (in
        // practice the loop's, 15, in the code compiled on the stack: OSR).
        let named = stack
            .iter()
            .find(|f| f["function"] == "spinForRender")
            .unwrap_or_else(|| panic!("spinForRender not in {stack:#?}"));
        assert_eq!(named["kind"], "js", "{named}");
        assert_eq!(named["module"], Value::Null, "{named}");
        assert_eq!(named["file"], target_script("node_frames.js"), "{named}");
        let line = named["line"].as_u64().expect("a line");
        assert!((13..=15).contains(&line), "{named}");
        assert!(named["column"].as_u64().is_some(), "{named}");
        // JIT code V8 runs no JavaScript function in (stubs) is never named
        // after another module's symbol.
        for frame in stack.iter().filter(|f| f["module"] == "[anon]") {
            assert!(
                frame["function"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("[JIT] 0x")),
                "{frame}"
            );
        }
    }
    let nested = report["stalls"]
        .as_array()
        .expect("stalls")
        .iter()
        .filter(|s| s["cause"]["nested_loop"] == true)
        .count();
    assert_eq!(nested, 3, "{:#}", report["stalls"]);
}

#[test]
fn node_perf_map_names_js_functions() {
    require_root!("node_perf_map_names_js_functions");
    // V8 also writes a log into its working directory then: a temporary one.
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut target = Target::start(
        Command::new("node")
            .arg("--perf-basic-prof")
            .arg(target_script("node_frames.js"))
            .current_dir(cwd.path()),
    );
    let map = perf_map(target.pid);
    let report = trace_to_end(&mut target, &[]);
    let _ = std::fs::remove_file(&map);
    let cpu = cpu_stalls(&report);
    assert_eq!(cpu.len(), 3, "{:#}", report["stalls"]);
    for stall in cpu {
        let stack = stall["cause"]["stack"].as_array().expect("stack");
        let named = stack
            .iter()
            .find(|f| f["function"] == "spinForRender")
            .unwrap_or_else(|| panic!("spinForRender not in {stack:#?}"));
        assert_eq!(named["module"], "[anon]");
        assert!(
            named["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("node_frames.js")),
            "{named}"
        );
        assert_eq!(named["line"], 12, "{named}");
    }
}

/// Whether `stack` is a condition-variable wait (a pool worker's idle wait).
fn is_cond_wait(stack: &Value) -> bool {
    functions(stack).iter().any(|f| f == "uv_cond_wait")
}

#[test]
fn node_idle_workers_are_not_blocking_calls() {
    require_root!("node_idle_workers_are_not_blocking_calls");
    let mut target = Target::start(Command::new("node").arg(target_script("node_frames.js")));
    let report = trace_to_end(&mut target, &[]);
    for group in report["blocking_groups"].as_array().expect("groups") {
        assert!(
            !is_cond_wait(&group["stack"]),
            "idle wait as blocking: {group:#}"
        );
    }
    for call in report["blocking"].as_array().expect("calls") {
        assert!(
            !is_cond_wait(&call["stack"]),
            "idle wait as blocking: {call:#}"
        );
    }
    // They were seen, and are idle time: the platform workers' (V8's GC
    // and compiler tasks) and the threadpool's (a file read each round).
    let idle_waits: Vec<&Value> = report["off_cpu"]
        .as_array()
        .expect("off_cpu")
        .iter()
        .filter(|row| is_cond_wait(&row["stack"]))
        .collect();
    for row in &idle_waits {
        assert_eq!(row["reason"], "idle", "{row:#}");
    }
    let callers = |name: &str| {
        idle_waits
            .iter()
            .any(|row| functions(&row["stack"]).iter().any(|f| f.starts_with(name)))
    };
    assert!(
        callers("node::(anonymous namespace)::PlatformWorkerThread"),
        "{idle_waits:#?}"
    );
    assert!(callers("worker"), "{idle_waits:#?}");
}

#[test]
fn node_threadpool_read_is_blocking() {
    require_root!("node_threadpool_read_is_blocking");
    const DELAY_MS: f64 = 300.0;
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("slow.fifo");
    let path = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("path");
    // SAFETY: a valid C string; mkfifo only creates the file.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // Held open for writing (read-write does not block), so the target's
    // open returns at once and its read blocks until the data comes.
    let mut writer = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("open the FIFO");
    let mut target = Target::start(
        Command::new("node")
            .arg(target_script("node_fifo_read.js"))
            .arg(&fifo),
    );
    // Threads that run no event loop: their calls need --all-syscalls.
    let tracer = Tracer::attach(target.pid, &["--all-syscalls"]);
    target.go();
    target.stdout.wait_for("reading", ready_timeout());
    // The planted delay, not a synchronisation.
    thread::sleep(Duration::from_millis(DELAY_MS as u64));
    writer.write_all(b"data\n").expect("write the FIFO");
    drop(writer);
    target.stdout.wait_for("read 5", ready_timeout());
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let report = done.report;
    // The FIFO is a pipe to the kernel; the read is the one in a threadpool
    // task (uv__fs_work).
    let reads: Vec<&Value> = report["blocking"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| functions(&c["stack"]).iter().any(|f| f == "uv__fs_work"))
        .collect();
    assert_eq!(reads.len(), 1, "{:#}", report["blocking"]);
    let read = reads[0];
    assert!(
        ["read", "readv", "pread64", "preadv"].contains(&read["syscall"].as_str().unwrap_or("")),
        "{read:#}"
    );
    let ms = read["duration_ns"].as_f64().expect("duration") / 1e6;
    assert_near("the blocked read", ms, DELAY_MS, timing_tolerance(0.10));
    assert_eq!(read["target"], "pipe", "{read:#}");
    let stack = functions(&read["stack"]);
    assert!(stack.iter().any(|f| f == "worker"), "{stack:?}");
    for group in report["blocking_groups"].as_array().expect("groups") {
        assert!(
            !is_cond_wait(&group["stack"]),
            "idle wait as blocking: {group:#}"
        );
    }
}
