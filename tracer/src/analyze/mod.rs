//! Pure analysis: a [`Trace`] in, a [`Report`] out. No I/O, no eBPF, so it
//! runs the same on a live trace and on a recording, and in unit tests.

mod blocking;
pub mod cpu;
mod gil;
mod idle_workers;
pub mod loops;
pub mod offcpu;
pub mod percentile;
mod syscalls;
pub mod tasks;

use crate::{
    report::model::{Report, ReportTarget, ThreadRow},
    trace::Trace,
};

pub const REPORT_VERSION: u32 = 1;

pub fn analyze(trace: &Trace) -> Report {
    let stalls = loops::stalls(trace);
    Report {
        version: REPORT_VERSION,
        target: ReportTarget {
            pid: trace.target.pid,
            comm: trace.target.comm.clone(),
            cmdline: trace.target.cmdline.clone(),
            cgroup: trace.cgroup.clone(),
        },
        duration_ns: trace.duration_ns,
        threshold_ns: trace.threshold_ns,
        lean: trace.lean,
        ended_by: trace.ended_by.clone(),
        dropped_events: trace.drops.total(),
        drops: trace.drops.clone(),
        kernel_limits: trace.kernel_limits.clone(),
        processes: trace.processes.clone(),
        threads: trace
            .threads
            .iter()
            .map(|t| ThreadRow {
                pid: t.pid,
                tid: t.tid,
                comm: t.comm.clone(),
            })
            .collect(),
        loops: loops::loop_rows(trace),
        stall_groups: loops::groups(&stalls),
        stall_task_groups: tasks::groups(&stalls),
        stalls,
        syscalls: syscalls::table(&trace.syscalls),
        blocking_groups: blocking::groups(trace),
        blocking: blocking::calls(trace),
        blocking_omitted: trace
            .call_groups
            .iter()
            .filter(|g| !idle_workers::is_idle_wait(trace, &g.first))
            .map(|g| g.blocking_count)
            .sum(),
        cpu: cpu::profile(trace),
        off_cpu: offcpu::rows(trace),
        gil_waits: gil::rows(trace),
        runqueue: offcpu::runqueue(trace),
    }
}
