//! The machine the benchmarks ran on, and how busy other work kept it.

use std::{fs, process::Command, thread, time::Duration};

/// CPU model, cores, memory, kernel and the versions of the tools compared.
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub tools: Vec<(&'static str, String)>,
    /// Cores busy with other work just before and just after the bench.
    pub busy_before: Option<f64>,
    pub busy_after: Option<f64>,
}

pub fn describe() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map_or_else(
            || "unknown CPU".to_string(),
            |(_, model)| model.trim().into(),
        );
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |release| release.trim().to_string());
    let version = |program: &str, args: &[&str]| {
        // wrk prints its version on stdout and exits 1, hence no output().
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|out| {
                let text = [out.stdout, out.stderr].concat();
                let text = String::from_utf8_lossy(&text);
                let first = text.lines().next().unwrap_or_default();
                // wrk's line goes on with "[epoll] Copyright ...".
                first
                    .split(" [")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "missing".into())
    };
    let aiohttp = version(
        "python3",
        &[
            "-c",
            "import sys, aiohttp; print(f'Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}')",
        ],
    );
    Machine {
        cpu,
        cores,
        memory_gib,
        kernel,
        tools: vec![
            ("strace", version("strace", &["-V"])),
            ("perf", version("perf", &["--version"])),
            ("wrk", version("wrk", &["-v"])),
            ("python", aiohttp),
        ],
        busy_before: busy_cores(),
        busy_after: None,
    }
}

/// How many cores were busy (not idle, not waiting for I/O) over one
/// second, from /proc/stat; the bench's own processes must not run then.
pub fn busy_cores() -> Option<f64> {
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let sample = || -> Option<(u64, u64)> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        let idle = ticks.get(3)? + ticks.get(4)?;
        Some((ticks.iter().sum::<u64>() - idle, ticks.iter().sum()))
    };
    let (busy_before, total_before) = sample()?;
    thread::sleep(Duration::from_secs(1));
    let (busy_after, total_after) = sample()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let total = total_after.checked_sub(total_before).filter(|&t| t > 0)? as f64;
    Some(cores * busy_after.saturating_sub(busy_before) as f64 / total)
}
