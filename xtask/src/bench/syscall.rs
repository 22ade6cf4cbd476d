//! Benchmark 1: the cost of one syscall, bare and under each tool, from a C
//! loop of getppid() calls that times itself. Benchmark 4: the cost of one
//! streamed event (stack copy and Python frames), from a Python loop of
//! short reads that times itself, with tracer making every call slow.

use std::{
    ffi::OsString,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};

use super::{
    observer::{self, Attached, Observer},
    process::{Guard, Stream, piped},
    results::Row,
};

/// Calls per run bare and under tracer.
pub const CALLS: u64 = 2_000_000;
/// Calls per run under strace and perf trace: at 13–21 µs a call, 2 M calls
/// would take a minute per run; 100 k give the same per-call figure.
pub const OBSERVED_CALLS: u64 = 100_000;

#[derive(Clone, Copy)]
enum Config {
    Bare,
    /// The tool traces the loop.
    Traced(Observer),
    /// The tool (a tracer) traces an idle process while the loop runs
    /// untraced.
    Elsewhere(Observer),
}

const CONFIGS: [(Config, &str); 7] = [
    (Config::Bare, "bare"),
    (Config::Traced(Observer::Tracer), "tracer --pid (this loop)"),
    (
        Config::Elsewhere(Observer::Tracer),
        "tracer --pid (another process)",
    ),
    (
        Config::Traced(Observer::TracerAllSyscalls),
        "tracer --all-syscalls (this)",
    ),
    (
        Config::Elsewhere(Observer::TracerAllSyscalls),
        "tracer --all-syscalls (other)",
    ),
    (Config::Traced(Observer::Strace), "strace -c -f -p"),
    (Config::Traced(Observer::PerfTrace), "perf trace -s -p"),
];

/// The row of the default tracer tracing another process: the syscall
/// entry path that every process pays while any `syscalls:` tracepoint is on.
pub const ENTRY_PATH_ROW: usize = 2;
const _: () = assert!(matches!(
    CONFIGS[ENTRY_PATH_ROW].0,
    Config::Elsewhere(Observer::Tracer)
));

/// Calls of benchmark 4's Python loop: few enough that their events (about
/// 34 KiB each, mostly the stack copy) fit the 16 MiB ring buffer even if
/// userspace read none, so that every one is streamed, none dropped.
pub const STREAMED_CALLS: u64 = 400;

const STREAMED_CONFIGS: [(Config, &str); 3] = [
    (Config::Bare, "bare"),
    (
        Config::Traced(Observer::TracerAllSyscalls),
        "tracer --all-syscalls (none slow)",
    ),
    (
        Config::Traced(Observer::TracerEveryCallSlow),
        "tracer --all-syscalls --threshold 1us",
    ),
];

/// A program that makes calls of one kind and times itself, speaking the
/// protocol of bench/getppid_loop.c.
struct Loop {
    name: &'static str,
    argv: Vec<OsString>,
    /// Calls per run, by configuration.
    calls: fn(Config) -> u64,
}

/// Benchmark 1. Each configuration once per repeat, interleaved; perf
/// trace's row is skipped with `perf_skip` as the reason when it cannot run
/// here.
pub fn measure(
    binary: &Path,
    tracer: &Path,
    repeats: usize,
    perf_skip: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let getppid = Loop {
        name: "getppid",
        argv: vec![binary.into()],
        calls: |config| match config {
            Config::Traced(Observer::Strace | Observer::PerfTrace) => OBSERVED_CALLS,
            _ => CALLS,
        },
    };
    measure_loop(&getppid, &CONFIGS, tracer, repeats, perf_skip)
}

/// Benchmark 4, on `script` (bench/python_slow_calls.py).
pub fn measure_streamed(
    script: PathBuf,
    tracer: &Path,
    repeats: usize,
) -> anyhow::Result<Vec<Row>> {
    let reads = Loop {
        name: "python reads",
        argv: vec!["python3".into(), script.into()],
        calls: |_| STREAMED_CALLS,
    };
    measure_loop(&reads, &STREAMED_CONFIGS, tracer, repeats, None)
}

fn measure_loop(
    target: &Loop,
    configs: &[(Config, &str)],
    tracer: &Path,
    repeats: usize,
    perf_skip: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let name = target.name;
    let mut rows: Vec<Row> = configs.iter().map(|(_, label)| Row::new(*label)).collect();
    for repeat in 1..=repeats {
        for ((config, label), row) in configs.iter().zip(&mut rows) {
            if matches!(config, Config::Traced(Observer::PerfTrace)) && perf_skip.is_some() {
                row.skipped = perf_skip.map(String::from);
                continue;
            }
            let (wall, cpu) = run(target, tracer, *config)
                .with_context(|| format!("{name} loop, {label}, repeat {repeat}"))?;
            eprintln!(
                "bench: [{repeat}/{repeats}] {name}, {label}: {wall:.1} ns/call ({cpu:.1} on CPU)"
            );
            row.values.push(wall);
            row.cpu_values.push(cpu);
        }
    }
    Ok(rows)
}

/// One run of the loop; returns its ns per call by the wall clock and by
/// its CPU time.
fn run(target: &Loop, tracer: &Path, config: Config) -> anyhow::Result<(f64, f64)> {
    let calls = (target.calls)(config);
    // Pinned like the service in benchmark 2, so runs do not migrate.
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0"])
        .args(&target.argv)
        .arg(calls.to_string());
    let mut target = Guard::spawn(target.name, piped(&mut command, true, true, false))?;
    let mut stdout = target.lines(Stream::Stdout)?;
    let ready = stdout.wait_for("\"ready PID\"", Duration::from_secs(10), |line| {
        line.starts_with("ready ")
    })?;
    let pid: u32 = ready["ready ".len()..]
        .trim()
        .parse()
        .with_context(|| format!("bad ready line {ready:?}"))?;

    let mut idle = None;
    let observer: Option<Attached> = match config {
        Config::Bare => None,
        Config::Traced(tool) => Some(observer::attach(tool, tracer, pid)?),
        Config::Elsewhere(tool) => {
            let sleeper = Guard::spawn(
                "sleep 1000",
                piped(Command::new("sleep").arg("1000"), false, false, false),
            )?;
            let attached = observer::attach(tool, tracer, sleeper.pid())?;
            idle = Some(sleeper);
            Some(attached)
        }
    };

    writeln!(target.stdin()?, "go").context("cannot release the loop")?;
    let result = stdout.wait_for("\"ns_per_call\"", Duration::from_secs(120), |line| {
        line.starts_with("ns_per_call ")
    })?;
    target.wait(Duration::from_secs(10))?;
    let figures: Vec<f64> = result
        .split_whitespace()
        .skip(1)
        .map_while(|figure| figure.parse().ok())
        .collect();
    let [wall, cpu] = figures[..] else {
        bail!("bad result line {result:?}");
    };
    match (observer, config) {
        (Some(attached), Config::Elsewhere(_)) => {
            attached.interrupt()?;
        }
        // The tools exit with their target.
        (Some(attached), _) => attached.finish()?,
        (None, _) => {}
    }
    drop(idle);
    Ok((wall, cpu))
}
