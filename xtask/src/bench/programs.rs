//! The kernel time of the tracer's eBPF programs, from the kernel's own
//! statistics (`kernel.bpf_stats_enabled`), by program type: a figure of
//! what tracing adds that this machine's noise does not blur.

use std::{fs, time::Duration};

use anyhow::Context;

const STATS_SWITCH: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// The program groups, by `prog_type` in fdinfo: tracepoint (the syscall
/// tracepoints), raw tracepoint (scheduler, timer and process events, and
/// the raw syscall tracepoints of --all-syscalls), perf event (the CPU
/// profile).
pub const GROUPS: [(&str, u32); 3] = [
    ("syscalls: tracepoints", 5),
    ("raw tracepoints", 17),
    ("CPU profile", 7),
];

/// Indexes in [`GROUPS`].
pub const WAIT_SYSCALLS: usize = 0;
pub const SCHEDULER: usize = 1;

/// The kernel's statistics are on while this lives. They cost two clock
/// reads per program run, so only a run of its own measures them.
pub struct StatsOn {
    previous: String,
}

impl StatsOn {
    pub fn enable() -> anyhow::Result<Self> {
        let previous = fs::read_to_string(STATS_SWITCH).context(STATS_SWITCH)?;
        fs::write(STATS_SWITCH, "1").context(STATS_SWITCH)?;
        Ok(Self { previous })
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        let _ = fs::write(STATS_SWITCH, self.previous.trim());
    }
}

/// What the kernel counted of a group of programs so far.
#[derive(Clone, Copy, Default)]
pub struct Runs {
    pub time: Duration,
    pub count: u64,
}

impl Runs {
    /// What was counted since `before`.
    pub fn since(self, before: Self) -> Self {
        Self {
            time: self.time.saturating_sub(before.time),
            count: self.count.saturating_sub(before.count),
        }
    }

    /// Mean time of one run, ns.
    pub fn mean_ns(self) -> f64 {
        self.time.as_nanos() as f64 / self.count.max(1) as f64
    }
}

/// Runs so far of the programs process `pid` holds, by [`GROUPS`].
pub fn runs(pid: u32) -> anyhow::Result<[Runs; 3]> {
    let mut runs = [Runs::default(); 3];
    let mut seen = Vec::new();
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in fs::read_dir(&dir).with_context(|| dir.clone())? {
        // An fd closed meanwhile is not a program.
        let Ok(info) = fs::read_to_string(entry?.path()) else {
            continue;
        };
        let field = |name: &str| -> Option<u64> {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.trim().parse().ok())
        };
        let (Some(id), Some(kind), Some(run_ns), Some(count)) = (
            field("prog_id"),
            field("prog_type"),
            field("run_time_ns"),
            field("run_cnt"),
        ) else {
            continue;
        };
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        if let Some(group) = GROUPS.iter().position(|(_, k)| u64::from(*k) == kind) {
            runs[group].time += Duration::from_nanos(run_ns);
            runs[group].count += count;
        }
    }
    Ok(runs)
}
