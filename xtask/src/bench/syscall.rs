//! Benchmark 1: the cost of one syscall, bare and under each tool, from a C
//! loop of getppid() calls that times itself.

use std::{io::Write, path::Path, process::Command, time::Duration};

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
    /// tracer traces an idle process while the loop runs untraced.
    TracerElsewhere,
}

const CONFIGS: [(Config, &str); 5] = [
    (Config::Bare, "bare"),
    (Config::Traced(Observer::Tracer), "tracer --pid (this loop)"),
    (Config::TracerElsewhere, "tracer --pid (another process)"),
    (Config::Traced(Observer::Strace), "strace -c -f -p"),
    (Config::Traced(Observer::PerfTrace), "perf trace -s -p"),
];

/// Each configuration once per repeat, interleaved; perf trace's row is
/// skipped with `perf_skip` as the reason when it cannot run here.
pub fn measure(
    binary: &Path,
    tracer: &Path,
    repeats: usize,
    perf_skip: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let mut rows: Vec<Row> = CONFIGS.iter().map(|(_, label)| Row::new(*label)).collect();
    for repeat in 1..=repeats {
        for ((config, label), row) in CONFIGS.iter().zip(&mut rows) {
            if matches!(config, Config::Traced(Observer::PerfTrace)) && perf_skip.is_some() {
                row.skipped = perf_skip.map(String::from);
                continue;
            }
            let (wall, cpu) = run(binary, tracer, *config)
                .with_context(|| format!("getppid loop, {label}, repeat {repeat}"))?;
            eprintln!(
                "bench: [{repeat}/{repeats}] getppid, {label}: {wall:.1} ns/call ({cpu:.1} on CPU)"
            );
            row.values.push(wall);
            row.cpu_values.push(cpu);
        }
    }
    Ok(rows)
}

/// One run of the loop; returns its ns per call by the wall clock and by
/// its CPU time.
fn run(binary: &Path, tracer: &Path, config: Config) -> anyhow::Result<(f64, f64)> {
    let calls = match config {
        Config::Traced(Observer::Strace | Observer::PerfTrace) => OBSERVED_CALLS,
        _ => CALLS,
    };
    // Pinned like the service in benchmark 2, so runs do not migrate.
    let mut command = Command::new("taskset");
    command.args(["-c", "0"]).arg(binary).arg(calls.to_string());
    let mut target = Guard::spawn("getppid_loop", piped(&mut command, true, true, false))?;
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
        Config::TracerElsewhere => {
            let sleeper = Guard::spawn(
                "sleep 1000",
                piped(Command::new("sleep").arg("1000"), false, false, false),
            )?;
            let attached = observer::attach(Observer::Tracer, tracer, sleeper.pid())?;
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
        (Some(attached), Config::TracerElsewhere) => {
            attached.interrupt()?;
        }
        // The tools exit with their target.
        (Some(attached), _) => attached.finish()?,
        (None, _) => {}
    }
    drop(idle);
    Ok((wall, cpu))
}
