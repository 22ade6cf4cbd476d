//! `cargo xtask soak`: the tracer in long-running mode for N minutes, on the
//! demo service (its four planted stalls over and over) and on the aiohttp
//! server of the benchmark under wrk's load, rotating its report set at a
//! compressed period and scraped for metrics now and then. Prints the
//! tracer's resident memory over time (flat is the figure to look for), and
//! fails unless every rotated set is a complete report without drops.

use std::{
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    process::{Guard, Stream, interrupt, piped, status_kib},
    service::{Server, start_wrk, wrk_result},
};
use crate::command::{build_tracer, tracer_binary, workspace_root};

pub struct Options {
    pub minutes: u64,
    /// The `--rotate` period, in seconds.
    pub rotate: u64,
}

/// How often the tracer's memory is read (and its metrics scraped).
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// From when the memory is compared.
const WARM_UP: Duration = Duration::from_secs(60);

pub fn soak(options: Options) -> anyhow::Result<()> {
    if options.minutes == 0 || options.rotate == 0 {
        bail!("--minutes and --rotate must be at least 1");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the soak attaches eBPF programs: run it as root");
    }
    super::tools::ensure()?;
    build_tracer()?;
    let out = workspace_root().join("target/soak");
    let sets = out.join("sets");
    if sets.exists() {
        fs::remove_dir_all(&sets).with_context(|| format!("cannot clear {}", sets.display()))?;
    }
    let mut service = Guard::spawn(
        "demo service",
        piped(
            Command::new("python3").arg(workspace_root().join("demo/blocking_service.py")),
            false,
            true,
            false,
        ),
    )?;
    let ready =
        service
            .lines(Stream::Stdout)?
            .wait_for("ready PID", Duration::from_secs(60), |l| {
                l.starts_with("ready ")
            })?;
    let pid = ready.trim_start_matches("ready ").trim().to_string();
    let server = Server::start()?;
    let targets = format!("{pid},{}", server.pid);
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let metrics = format!("127.0.0.1:{port}");
    let rotate = format!("{}s", options.rotate);
    let mut tracer = Guard::spawn(
        "tracer",
        piped(
            Command::new(tracer_binary())
                .args(["-p", &targets, "-o"])
                .arg(&sets)
                .args(["--rotate", &rotate, "--metrics", &metrics]),
            false,
            false,
            true,
        ),
    )?;
    let mut stderr = tracer.lines(Stream::Stderr)?;
    stderr.wait_for("the attach", Duration::from_secs(120), |l| {
        l.contains("attached to pid")
    })?;
    let soak_time = Duration::from_secs(options.minutes * 60);
    eprintln!(
        "soak: tracing pids {targets} (the demo, the aiohttp server under wrk) for {soak_time:?}, rotating every {rotate}"
    );
    let load = start_wrk(server.port, soak_time)?;
    let started = Instant::now();
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    while started.elapsed() < soak_time {
        thread::sleep(SAMPLE_EVERY.min(soak_time.saturating_sub(started.elapsed())));
        if tracer.try_wait()?.is_some() {
            bail!("the tracer exited early: {:?}", stderr.drain());
        }
        scrape(&metrics)?;
        let rss = status_kib(tracer.pid(), "VmRSS")?;
        samples.push((started.elapsed(), rss));
        eprintln!(
            "soak: {:>5.0} s  tracer RSS {:.1} MiB",
            started.elapsed().as_secs_f64(),
            mib(rss)
        );
    }
    let (requests_per_s, _) = wrk_result(load, Duration::ZERO)?;
    interrupt(tracer.pid())?;
    let status = tracer.wait(Duration::from_secs(120))?;
    if !status.success() {
        bail!("the tracer failed ({status}): {:?}", stderr.drain());
    }
    server.stop()?;
    let checked = check_sets(&sets)?;
    let mut summary = summary(&samples, &options, checked.sets)?;
    summary += &format!(
        "load: wrk at {requests_per_s:.0} requests/s on the aiohttp server throughout\n\
         every set a complete report: {} stalls in all, 0 events dropped\n",
        checked.stalls
    );
    print!("{summary}");
    fs::create_dir_all(&out)?;
    fs::write(out.join("soak.txt"), &summary)?;
    Ok(())
}

/// What the rotated sets hold in all.
struct Checked {
    sets: usize,
    stalls: u64,
}

/// Every set in `sets` must be a complete report (all its files, a
/// report.json that parses) of a period that lost no event.
fn check_sets(sets: &std::path::Path) -> anyhow::Result<Checked> {
    const FILES: [&str; 5] = [
        "report.txt",
        "report.json",
        "cpu.pb.gz",
        "offcpu.pb.gz",
        "timeline.json",
    ];
    let mut checked = Checked { sets: 0, stalls: 0 };
    for set in fs::read_dir(sets)? {
        let set = set?.path();
        for file in FILES {
            if !set.join(file).is_file() {
                bail!("the set {} has no {file}", set.display());
            }
        }
        let json = fs::read_to_string(set.join("report.json"))?;
        let report: serde_json::Value = serde_json::from_str(&json)
            .with_context(|| format!("{}/report.json is not JSON", set.display()))?;
        let drops = &report["drops"];
        let lost: u64 = ["ringbuf_full", "thread_map_full", "process_map_full"]
            .iter()
            .map(|kind| drops[kind].as_u64().unwrap_or(u64::MAX))
            .sum();
        if lost != 0 {
            bail!("the set {} dropped events: {drops}", set.display());
        }
        let stalls = report["stalls"]
            .as_array()
            .with_context(|| format!("{}/report.json has no stalls list", set.display()))?;
        checked.sets += 1;
        checked.stalls += stalls.len() as u64;
    }
    Ok(checked)
}

/// GET /metrics; the scrape must succeed (and be an exposition).
fn scrape(addr: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("cannot reach {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") || !answer.contains("tracer_loop_iteration_seconds") {
        bail!("bad scrape of {addr}: {:.200}", answer);
    }
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// RSS at the first reading, once warm (after the first minute: the
/// first report sets grow the allocator's arenas once), in the middle and
/// at the end; the max, and the growth over the second half per hour.
fn summary(samples: &[(Duration, u64)], options: &Options, sets: usize) -> anyhow::Result<String> {
    let first = *samples.first().context("no memory sample")?;
    let warm = *samples
        .iter()
        .find(|(at, _)| *at >= WARM_UP)
        .unwrap_or(&first);
    let middle = samples[samples.len() / 2];
    let end = samples[samples.len() - 1];
    let max = samples.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    let growth = (end.1 as f64 / warm.1 as f64 - 1.0) * 100.0;
    let half_hours = (end.0 - middle.0).as_secs_f64() / 3600.0;
    let per_hour = if half_hours > 0.0 {
        mib(end.1.saturating_sub(middle.1)) / half_hours
    } else {
        0.0
    };
    let row = |name: &str, (at, kib): (Duration, u64)| {
        format!(
            "  {name:<7} {:>6.0} s  {:>7.1} MiB\n",
            at.as_secs_f64(),
            mib(kib)
        )
    };
    Ok(format!(
        "soak: {} min, --rotate {}s, {sets} report sets written\n\
         tracer resident memory (VmRSS):\n{}{}{}{}  max              {:>7.1} MiB\n  \
         end vs warm: {growth:+.1} %; second half: {per_hour:+.1} MiB/hour\n",
        options.minutes,
        options.rotate,
        row("first", first),
        row("warm", warm),
        row("middle", middle),
        row("end", end),
        mib(max),
    ))
}
