//! Benchmark 2 (and 3): an aiohttp hello world on CPU 0 under wrk on CPU 1,
//! bare and under each tool, with what each tool itself costs meanwhile.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    observer::{self, Attached, Observer},
    process::{Guard, Stream, cpu_time, piped},
    results::Row,
};
use crate::command::workspace_root;

/// The load: one wrk thread, 32 connections, loopback only.
const WRK_OPTIONS: [&str; 4] = ["-t1", "-c32", "--timeout", "2s"];

/// The wrk command line, for the table.
pub fn load(duration: Duration) -> String {
    format!("wrk {} -d{}s", WRK_OPTIONS.join(" "), duration.as_secs())
}

const CONFIGS: [(Option<Observer>, &str); 5] = [
    (None, "bare"),
    (Some(Observer::Tracer), "tracer --pid"),
    (Some(Observer::TracerLean), "tracer --pid --lean"),
    (Some(Observer::Strace), "strace -f -c -p"),
    (Some(Observer::PerfTrace), "perf trace -s -p"),
];

/// One server for all runs, warmed up first; each configuration once per
/// repeat, interleaved.
pub fn measure(
    tracer: &Path,
    repeats: usize,
    duration: Duration,
    perf_skip: Option<&str>,
) -> anyhow::Result<Vec<Row>> {
    let script = workspace_root().join("bench/aiohttp_hello.py");
    let mut command = Command::new("taskset");
    command.args(["-c", "0", "python3"]).arg(&script);
    let mut server = Guard::spawn("aiohttp server", piped(&mut command, true, true, false))?;
    let ready = server.lines(Stream::Stdout)?.wait_for(
        "\"ready PID PORT\"",
        Duration::from_secs(30),
        |line| line.starts_with("ready "),
    )?;
    // python3 may be a shim that starts the interpreter: its pid is the one
    // to trace.
    let (pid, port) = ready["ready ".len()..]
        .split_once(' ')
        .and_then(|(pid, port)| Some((pid.parse::<u32>().ok()?, port.trim().parse::<u16>().ok()?)))
        .with_context(|| format!("bad ready line {ready:?}"))?;

    // First requests are slower (imports, allocator growth): not measured.
    wrk(port, Duration::from_secs(2)).context("warm-up")?;

    let mut rows: Vec<Row> = CONFIGS.iter().map(|(_, label)| Row::new(*label)).collect();
    for repeat in 1..=repeats {
        for ((tool, label), row) in CONFIGS.iter().zip(&mut rows) {
            if *tool == Some(Observer::PerfTrace) && perf_skip.is_some() {
                row.skipped = perf_skip.map(String::from);
                continue;
            }
            let rps = run(tracer, pid, port, duration, *tool, row)
                .with_context(|| format!("aiohttp, {label}, repeat {repeat}"))?;
            eprintln!("bench: [{repeat}/{repeats}] aiohttp, {label}: {rps:.0} requests/s");
        }
    }
    server.close_stdin();
    server.wait(Duration::from_secs(10))?;
    Ok(rows)
}

/// One wrk run with `tool` attached (if any); adds its figures to `row`:
/// requests/s, the server's CPU time per request, and what the tool cost.
/// Returns the requests per second.
fn run(
    tracer: &Path,
    pid: u32,
    port: u16,
    duration: Duration,
    tool: Option<Observer>,
    row: &mut Row,
) -> anyhow::Result<f64> {
    let attached = tool
        .map(|tool| observer::attach(tool, tracer, pid))
        .transpose()?;
    let tool_cpu_before = attached.as_ref().map(Attached::cpu_time).transpose()?;
    let server_cpu_before = cpu_time(pid)?;
    let started = Instant::now();
    let (rps, requests) = wrk(port, duration)?;
    let wall = started.elapsed();
    // Includes the kernel work the tools' probes do in the server's context.
    let server_cpu = cpu_time(pid)?.saturating_sub(server_cpu_before);
    row.values.push(rps);
    row.cpu_values
        .push(server_cpu.as_secs_f64() * 1e6 / requests as f64);

    let (Some(attached), Some(tool_cpu_before)) = (attached, tool_cpu_before) else {
        return Ok(rps);
    };
    let cpu = attached.cpu_time()?.saturating_sub(tool_cpu_before);
    let peak_rss_kib = attached.peak_rss_kib()?;
    let attach_time = attached.attach_time;
    let report_time = attached.interrupt()?;
    let cost = &mut row.cost;
    cost.cpu_percent
        .push(100.0 * cpu.as_secs_f64() / wall.as_secs_f64());
    cost.peak_rss_mib.push(peak_rss_kib as f64 / 1024.0);
    cost.attach_ms.push(attach_time.as_secs_f64() * 1000.0);
    cost.report_ms.push(report_time.as_secs_f64() * 1000.0);
    Ok(rps)
}

/// Runs wrk on CPU 1 and returns its requests per second and the number of
/// requests it made.
fn wrk(port: u16, duration: Duration) -> anyhow::Result<(f64, u64)> {
    let mut command = Command::new("taskset");
    command
        .args(["-c", "1", "wrk"])
        .args(WRK_OPTIONS)
        .arg(format!("-d{}s", duration.as_secs()))
        .arg(format!("http://127.0.0.1:{port}/"));
    let mut child = Guard::spawn("wrk", piped(&mut command, false, true, true))?;
    let mut stdout = child.lines(Stream::Stdout)?;
    let status = child.wait(duration + Duration::from_secs(30))?;
    let rate = stdout.wait_for("\"Requests/sec\"", Duration::from_secs(5), |line| {
        line.starts_with("Requests/sec:")
    });
    let output = stdout.drain().join("\n");
    if !status.success() {
        bail!("wrk failed ({status}): {output}");
    }
    // Errors mean the server did not answer every request: not a rate.
    if output.contains("Non-2xx") {
        bail!("the server answered with errors: {output}");
    }
    if let Some(errors) = output.lines().find(|line| line.contains("Socket errors")) {
        eprintln!("bench: wrk: {}", errors.trim());
    }
    let rate = rate?;
    let rps = rate["Requests/sec:".len()..]
        .trim()
        .parse()
        .with_context(|| format!("bad wrk line {rate:?}"))?;
    // "  123456 requests in 10.00s, 17.61MB read"
    let requests = output
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .filter(|&requests| requests > 0)
        .with_context(|| format!("no request count in wrk's output: {output}"))?;
    Ok((rps, requests))
}
