//! `cargo xtask bench`: what tracing costs, side by side with strace and
//! perf trace, in one run. Prints a table and writes it, with bench.json,
//! to target/bench/.

mod machine;
mod observer;
mod process;
mod programs;
mod report;
mod results;
mod service;
pub mod soak;
mod syscall;
mod tools;

use std::{
    fs,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::command::{build_tracer, output, tracer_binary, workspace_root};

/// The priority of every process the benchmarks start.
pub const NICE: i32 = -20;

pub struct Options {
    pub repeats: usize,
    /// Of each wrk run.
    pub duration: Duration,
    /// A tracer binary to measure instead of building target/release/tracer.
    pub tracer: Option<PathBuf>,
}

pub fn bench(options: Options) -> anyhow::Result<()> {
    if options.repeats == 0 || options.duration.is_zero() {
        bail!("--repeats and --duration must be at least 1");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmark attaches eBPF programs, strace and perf: run it as root");
    }
    tools::ensure()?;
    let (tracer, tracer_label) = match options.tracer {
        Some(path) => {
            let label = path.display().to_string();
            (path, label)
        }
        None => {
            build_tracer()?;
            (tracer_binary(), work_tree_label())
        }
    };
    let perf_skip = tools::perf_trace_unusable();
    if let Some(reason) = &perf_skip {
        eprintln!("bench: skipping perf trace: {reason}");
    }
    let getppid_loop = tools::build_getppid_loop()?;

    let mut machine = machine::describe();
    warn_if_busy(machine.busy_before, "before");
    raise_priority()?;
    let started = Instant::now();
    let syscall = syscall::measure(
        &getppid_loop,
        &tracer,
        options.repeats,
        perf_skip.as_deref(),
    )?;
    let (service, server_cost) = service::measure(
        &tracer,
        options.repeats,
        options.duration,
        perf_skip.as_deref(),
    )?;
    let streamed = syscall::measure_streamed(
        workspace_root().join("bench/python_slow_calls.py"),
        &tracer,
        options.repeats,
    )?;
    let elapsed_s = started.elapsed().as_secs_f64();
    machine.busy_after = machine::busy_cores();
    warn_if_busy(machine.busy_after, "after");
    let results = results::Results {
        machine,
        tracer: tracer_label,
        repeats: options.repeats,
        syscall_calls: syscall::CALLS,
        observed_calls: syscall::OBSERVED_CALLS,
        wrk: service::load(options.duration),
        syscall,
        service,
        server_cost,
        streamed_calls: syscall::STREAMED_CALLS,
        streamed,
        elapsed_s,
    };

    let table = report::table(&results);
    println!("\n{table}");
    let dir = workspace_root().join("target/bench");
    let json = serde_json::to_string_pretty(&report::json(&results))?;
    for (name, text) in [("bench.txt", table), ("bench.json", json + "\n")] {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "bench: wrote {0}/bench.txt and {0}/bench.json",
        dir.display()
    );
    Ok(())
}

/// Runs the benchmarks' processes (targets, tools, wrk: all inherit it) at
/// nice -20, so that other work on a shared machine takes less of their
/// cores; they all stay equal to each other, as in production.
fn raise_priority() -> anyhow::Result<()> {
    // SAFETY: plain syscall on this thread, which spawns every child.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) } != 0 {
        bail!(
            "cannot set nice {NICE}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Other work on the machine makes every figure noisier: say so.
fn warn_if_busy(busy: Option<f64>, when: &str) {
    if let Some(cores) = busy.filter(|&cores| cores > 0.2) {
        eprintln!(
            "bench: warning: {cores:.1} cores were busy with other work {when} the benchmarks; \
             expect noisy figures (compare the spreads, or run again when the machine is idle)"
        );
    }
}

/// "target/release/tracer at a91f59d (+ uncommitted changes)": which code
/// was measured. Read-only git commands: others may be editing the tree.
fn work_tree_label() -> String {
    let git = || {
        let mut command = Command::new("git");
        command.current_dir(workspace_root());
        command
    };
    let Some(commit) = output(git().args(["rev-parse", "--short", "HEAD"])) else {
        return "target/release/tracer".into();
    };
    let clean = git()
        .args([
            "diff",
            "--quiet",
            "HEAD",
            "--",
            "tracer",
            "tracer-ebpf",
            "tracer-common",
        ])
        .status()
        .is_ok_and(|status| status.success());
    let changes = if clean { "" } else { " + uncommitted changes" };
    format!("target/release/tracer at {}{changes}", commit.trim())
}
