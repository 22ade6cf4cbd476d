//! The kernel time of the tracer's eBPF programs, from the kernel's own
//! statistics (`kernel.bpf_stats_enabled`), by program type: a figure of
//! what tracing adds that this machine's noise does not blur.

use std::{fs, time::Duration};

use anyhow::Context;

const STATS_SWITCH: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// The program groups, by `prog_type` in fdinfo: tracepoint (the syscall
/// tracepoints), raw tracepoint (scheduler and process events, and the
/// raw syscall tracepoints of --all-syscalls), perf event (the samplers).
pub const GROUPS: [(&str, u32); 3] = [
    ("syscalls: tracepoints", 5),
    ("raw tracepoints", 17),
    ("CPU samplers", 7),
];

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

/// Run time so far of the programs process `pid` holds, by [`GROUPS`].
pub fn run_times(pid: u32) -> anyhow::Result<[Duration; 3]> {
    let mut times = [Duration::ZERO; 3];
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
        let (Some(id), Some(kind), Some(run_ns)) =
            (field("prog_id"), field("prog_type"), field("run_time_ns"))
        else {
            continue;
        };
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        if let Some(group) = GROUPS.iter().position(|(_, k)| u64::from(*k) == kind) {
            times[group] += Duration::from_nanos(run_ns);
        }
    }
    Ok(times)
}
