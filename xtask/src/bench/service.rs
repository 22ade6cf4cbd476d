//! Benchmark 2 (and 3): an aiohttp hello world on CPU 0 under wrk on CPU 1,
//! bare and under each tool, beside an untraced twin, with what each tool
//! itself costs meanwhile.

use std::{
    fs,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    observer::{self, Attached, Observer},
    process::{Guard, Lines, Stream, piped, run_time},
    programs::{self, Runs, StatsOn},
    results::{Row, ServerCost},
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
pub struct Server {
    process: Guard,
    pub pid: u32,
    pub port: u16,
}

impl Server {
    pub fn start() -> anyhow::Result<Self> {
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

    pub fn stop(mut self) -> anyhow::Result<()> {
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
/// configuration once per repeat, interleaved; then a run that measures
/// what the default tracer costs the server by the kernel's accounting.
pub fn measure(
    tracer: &Path,
    repeats: usize,
    duration: Duration,
    perf_skip: Option<&str>,
) -> anyhow::Result<(Vec<Row>, ServerCost)> {
    let twins = [Server::start()?, Server::start()?];
    // First requests are slower (imports, allocator growth): not measured.
    load_both([twins[0].port, twins[1].port], Duration::from_secs(2)).context("warm-up")?;

    let mut rows: Vec<Row> = CONFIGS.iter().map(|(_, label)| Row::new(*label)).collect();
    let mut cost = ServerCost::default();
    for repeat in 1..=repeats {
        for ((tool, label), row) in CONFIGS.iter().zip(&mut rows) {
            if *tool == Some(Observer::PerfTrace) && perf_skip.is_some() {
                row.skipped = perf_skip.map(String::from);
                continue;
            }
            let traced = &twins[repeat % 2];
            let twin = &twins[1 - repeat % 2];
            let run = run(tracer, traced, twin, duration, *tool, row)
                .with_context(|| format!("aiohttp, {label}, repeat {repeat}"))?;
            if let (Some(Observer::TracerAllSyscalls), Some(syscalls)) = (tool, run.syscalls) {
                cost.syscalls.push(syscalls as f64 / run.requests as f64);
            }
            eprintln!(
                "bench: [{repeat}/{repeats}] aiohttp, {label}: {:.0} requests/s",
                run.rps
            );
        }
        let percent = measure_server_cost(tracer, &twins[repeat % 2], duration, &mut cost)
            .with_context(|| format!("aiohttp, kernel accounting, repeat {repeat}"))?;
        eprintln!(
            "bench: [{repeat}/{repeats}] aiohttp, the tracer's programs: {percent:.2} % of the server's CPU"
        );
    }
    for server in twins {
        server.stop()?;
    }
    Ok((rows, cost))
}

/// A run with the server alone on CPU 0 under wrk on CPU 1 (its twin
/// idle): the setup of a production server with a core of its own. The
/// default tracer is attached to it, a second one to an idle process, and
/// the kernel's program statistics are on. Both tracers' programs run on
/// every process's events; only the first one's also work for the traced
/// server, so the difference of their times is that work. Adds to `cost`;
/// returns the programs' time for the server in percent of its CPU time.
fn measure_server_cost(
    tracer: &Path,
    traced: &Server,
    duration: Duration,
    cost: &mut ServerCost,
) -> anyhow::Result<f64> {
    let idle = Guard::spawn(
        "idle process",
        piped(Command::new("sleep").arg("3600"), false, false, false),
    )?;
    let server_tracer = observer::attach(Observer::Tracer, tracer, traced.pid)?;
    let idle_tracer = observer::attach(Observer::Tracer, tracer, idle.pid())?;
    let stats = StatsOn::enable()?;
    let runs = || -> anyhow::Result<_> {
        Ok((
            programs::runs(server_tracer.pid())?,
            programs::runs(idle_tracer.pid())?,
            run_time(traced.pid)?,
            context_switches(traced.pid)?,
        ))
    };
    let before = runs()?;
    let (_, requests) = wrk_result(start_wrk(traced.port, duration)?, duration)?;
    let after = runs()?;
    drop(stats);
    let waits = server_tracer
        .interrupt()?
        .syscalls_counted
        .context("no report from the server's tracer")?;
    idle_tracer.interrupt()?;
    drop(idle);

    let per_request = |runs: Runs| runs.time.as_nanos() as f64 / requests as f64;
    let mut work = 0.0;
    let mut idle_runs = [Runs::default(); 3];
    for (group, traced_work) in cost.traced_work_ns.iter_mut().enumerate() {
        let server = after.0[group].since(before.0[group]);
        idle_runs[group] = after.1[group].since(before.1[group]);
        let ns = per_request(server) - per_request(idle_runs[group]);
        traced_work.push(ns);
        work += ns;
    }
    // A wait syscall runs an enter and an exit program.
    let switches = after.3.saturating_sub(before.3);
    let own_filter = 2.0 * waits as f64 * idle_runs[programs::WAIT_SYSCALLS].mean_ns()
        + switches as f64 * idle_runs[programs::SCHEDULER].mean_ns();
    cost.own_filter_ns.push(own_filter / requests as f64);
    cost.waits.push(waits as f64 / requests as f64);
    cost.switches.push(switches as f64 / requests as f64);
    cost.everyone_filter_ns
        .push(idle_runs.into_iter().map(per_request).sum());
    let server_ns = after.2.saturating_sub(before.2).as_nanos() as f64 / requests as f64;
    cost.server_ns.push(server_ns);
    Ok(100.0 * (work + own_filter / requests as f64) / server_ns)
}

/// Times the threads of process `pid` were switched out, so far.
fn context_switches(pid: u32) -> anyhow::Result<u64> {
    let tasks = format!("/proc/{pid}/task");
    let mut total = 0;
    for task in fs::read_dir(&tasks).with_context(|| format!("cannot list {tasks}"))? {
        // A thread that exited since the listing has nothing left to add.
        let Ok(status) = fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        total += status
            .lines()
            .filter_map(|line| {
                let count = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))?;
                count.trim().parse::<u64>().ok()
            })
            .sum::<u64>();
    }
    Ok(total)
}

/// Loads the servers on both `ports` at once for `duration`; returns each
/// one's (requests per second, requests).
fn load_both(ports: [u16; 2], duration: Duration) -> anyhow::Result<[(f64, u64); 2]> {
    let first = start_wrk(ports[0], duration)?;
    let second = start_wrk(ports[1], duration)?;
    Ok([wrk_result(first, duration)?, wrk_result(second, duration)?])
}

/// What one run of (2) gives besides the figures of its row.
struct Run {
    rps: f64,
    requests: u64,
    /// The syscalls tracer counted (all of them with --all-syscalls).
    syscalls: Option<u64>,
}

/// One run with `tool` attached to `traced` (if any) while `twin` runs
/// untraced beside it; adds its figures to `row`: the traced server's
/// requests/s, its CPU time per request, that per-request cost against the
/// twin's, and what the tool cost.
fn run(
    tracer: &Path,
    traced: &Server,
    twin: &Server,
    duration: Duration,
    tool: Option<Observer>,
    row: &mut Row,
) -> anyhow::Result<Run> {
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

    let mut run = Run {
        rps,
        requests,
        syscalls: None,
    };
    let (Some(attached), Some(tool_cpu_before)) = (attached, tool_cpu_before) else {
        return Ok(run);
    };
    let cpu = attached.cpu_time()?.saturating_sub(tool_cpu_before);
    let peak_rss_kib = attached.peak_rss_kib()?;
    let attach_time = attached.attach_time;
    let ended = attached.interrupt()?;
    run.syscalls = ended.syscalls_counted;
    let cost = &mut row.cost;
    cost.cpu_percent
        .push(100.0 * cpu.as_secs_f64() / wall.as_secs_f64());
    cost.peak_rss_mib.push(peak_rss_kib as f64 / 1024.0);
    cost.attach_ms.push(attach_time.as_secs_f64() * 1000.0);
    cost.report_ms
        .push(ended.report_time.as_secs_f64() * 1000.0);
    Ok(run)
}

/// Starts wrk on CPU 1 against `port` for `duration`.
pub fn start_wrk(port: u16, duration: Duration) -> anyhow::Result<(Guard, Lines)> {
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
pub fn wrk_result(
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
