//! Benchmark 2 (and 3): an aiohttp hello world on CPU 0 under wrk on CPU 1,
//! bare and under each tool, beside an untraced twin, with what each tool
//! itself costs meanwhile.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    observer::{self, Attached, Observer},
    process::{Guard, Lines, Stream, piped, run_time},
    programs::{self, StatsOn},
    results::{ProgramTimes, Row},
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
    (
        Some(Observer::TracerAllSyscalls),
        "tracer --pid --all-syscalls",
    ),
    (Some(Observer::Strace), "strace -f -c -p"),
    (Some(Observer::PerfTrace), "perf trace -s -p"),
];

/// A server of the benchmark, pinned to CPU 0.
struct Server {
    process: Guard,
    pid: u32,
    port: u16,
}

impl Server {
    fn start() -> anyhow::Result<Self> {
        let script = workspace_root().join("bench/aiohttp_hello.py");
        let mut command = Command::new("taskset");
        command.args(["-c", "0", "python3"]).arg(&script);
        let mut process = Guard::spawn("aiohttp server", piped(&mut command, true, true, false))?;
        let ready = process.lines(Stream::Stdout)?.wait_for(
            "\"ready PID PORT\"",
            Duration::from_secs(30),
            |line| line.starts_with("ready "),
        )?;
        // python3 may be a shim that starts the interpreter: its pid is the
        // one to trace.
        let (pid, port) = ready["ready ".len()..]
            .split_once(' ')
            .and_then(|(pid, port)| {
                Some((pid.parse::<u32>().ok()?, port.trim().parse::<u16>().ok()?))
            })
            .with_context(|| format!("bad ready line {ready:?}"))?;
        Ok(Self { process, pid, port })
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.process.close_stdin();
        self.process.wait(Duration::from_secs(10))?;
        Ok(())
    }
}

/// Two identical servers share CPU 0, each under its own wrk on CPU 1; in
/// each run the tool traces one of them (the other in the next repeat).
/// This machine's speed drifts by up to 3× within minutes, so runs one
/// after the other compare poorly: the traced server's CPU time per request
/// against its twin's, measured in the same seconds, does not drift. Each
/// configuration once per repeat, interleaved; then a run that measures the
/// tracer's kernel programs.
pub fn measure(
    tracer: &Path,
    repeats: usize,
    duration: Duration,
    perf_skip: Option<&str>,
) -> anyhow::Result<(Vec<Row>, ProgramTimes)> {
    let twins = [Server::start()?, Server::start()?];
    // First requests are slower (imports, allocator growth): not measured.
    load_both([twins[0].port, twins[1].port], Duration::from_secs(2)).context("warm-up")?;

    let mut rows: Vec<Row> = CONFIGS.iter().map(|(_, label)| Row::new(*label)).collect();
    let mut programs = ProgramTimes::default();
    for repeat in 1..=repeats {
        for ((tool, label), row) in CONFIGS.iter().zip(&mut rows) {
            if *tool == Some(Observer::PerfTrace) && perf_skip.is_some() {
                row.skipped = perf_skip.map(String::from);
                continue;
            }
            let traced = &twins[repeat % 2];
            let twin = &twins[1 - repeat % 2];
            let rps = run(tracer, traced, twin, duration, *tool, row)
                .with_context(|| format!("aiohttp, {label}, repeat {repeat}"))?;
            eprintln!("bench: [{repeat}/{repeats}] aiohttp, {label}: {rps:.0} requests/s");
        }
        let traced = &twins[repeat % 2];
        let percent = measure_programs(
            tracer,
            traced,
            twins[1 - repeat % 2].port,
            duration,
            &mut programs,
        )
        .with_context(|| format!("aiohttp, kernel program time, repeat {repeat}"))?;
        eprintln!(
            "bench: [{repeat}/{repeats}] aiohttp, tracer's kernel programs: {percent:.2} % of the server's CPU"
        );
    }
    for server in twins {
        server.stop()?;
    }
    Ok((rows, programs))
}

/// A run with the default tracer attached to `traced` and the kernel's
/// program statistics on; adds to `times` and returns the programs' time
/// in percent of the traced server's CPU time.
fn measure_programs(
    tracer: &Path,
    traced: &Server,
    twin_port: u16,
    duration: Duration,
    times: &mut ProgramTimes,
) -> anyhow::Result<f64> {
    let attached = observer::attach(Observer::Tracer, tracer, traced.pid)?;
    let stats = StatsOn::enable()?;
    let before = programs::run_times(attached.pid())?;
    let cpu_before = run_time(traced.pid)?;
    let [(_, requests), _] = load_both([traced.port, twin_port], duration)?;
    let cpu = run_time(traced.pid)?.saturating_sub(cpu_before);
    let after = programs::run_times(attached.pid())?;
    drop(stats);
    attached.interrupt()?;
    let mut total = Duration::ZERO;
    for ((per_request, before), after) in times.per_request_ns.iter_mut().zip(before).zip(after) {
        let spent = after.saturating_sub(before);
        total += spent;
        per_request.push(spent.as_nanos() as f64 / requests as f64);
    }
    let percent = 100.0 * total.as_secs_f64() / cpu.as_secs_f64();
    times.percent_of_server.push(percent);
    Ok(percent)
}

/// Loads the servers on both `ports` at once for `duration`; returns each
/// one's (requests per second, requests).
fn load_both(ports: [u16; 2], duration: Duration) -> anyhow::Result<[(f64, u64); 2]> {
    let first = start_wrk(ports[0], duration)?;
    let second = start_wrk(ports[1], duration)?;
    Ok([wrk_result(first, duration)?, wrk_result(second, duration)?])
}

/// One run with `tool` attached to `traced` (if any) while `twin` runs
/// untraced beside it; adds its figures to `row`: the traced server's
/// requests/s, its CPU time per request, that per-request cost against the
/// twin's, and what the tool cost. Returns the requests per second.
fn run(
    tracer: &Path,
    traced: &Server,
    twin: &Server,
    duration: Duration,
    tool: Option<Observer>,
    row: &mut Row,
) -> anyhow::Result<f64> {
    let attached = tool
        .map(|tool| observer::attach(tool, tracer, traced.pid))
        .transpose()?;
    let tool_cpu_before = attached.as_ref().map(Attached::cpu_time).transpose()?;
    let before = [run_time(traced.pid)?, run_time(twin.pid)?];
    let started = Instant::now();
    let [(rps, requests), (_, twin_requests)] = load_both([traced.port, twin.port], duration)?;
    let wall = started.elapsed();
    // Includes the kernel work the tools' probes do in the server's context.
    let cpu_per_request = |pid: u32, before: Duration, requests: u64| -> anyhow::Result<f64> {
        let cpu = run_time(pid)?.saturating_sub(before);
        Ok(cpu.as_secs_f64() * 1e6 / requests as f64)
    };
    let traced_cost = cpu_per_request(traced.pid, before[0], requests)?;
    let twin_cost = cpu_per_request(twin.pid, before[1], twin_requests)?;
    row.values.push(rps);
    row.cpu_values.push(traced_cost);
    row.twin_percent.push(100.0 * twin_cost / traced_cost);

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

/// Starts wrk on CPU 1 against `port` for `duration`.
fn start_wrk(port: u16, duration: Duration) -> anyhow::Result<(Guard, Lines)> {
    let mut command = Command::new("taskset");
    command
        .args(["-c", "1", "wrk"])
        .args(WRK_OPTIONS)
        .arg(format!("-d{}s", duration.as_secs()))
        .arg(format!("http://127.0.0.1:{port}/"));
    let mut child = Guard::spawn("wrk", piped(&mut command, false, true, true))?;
    let stdout = child.lines(Stream::Stdout)?;
    Ok((child, stdout))
}

/// Waits for a wrk of `duration` and returns its requests per second and
/// the number of requests it made.
fn wrk_result(
    (mut child, mut stdout): (Guard, Lines),
    duration: Duration,
) -> anyhow::Result<(f64, u64)> {
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
