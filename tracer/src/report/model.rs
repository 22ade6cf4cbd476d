//! The report as data: what `--json` writes (docs/json.md documents it;
//! changes must be additive) and what the text report renders.

use serde::Serialize;

use crate::trace::{Drops, Frame};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub target: ReportTarget,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    pub ended_by: String,
    /// Sum of `drops`: events the tracer could not record.
    pub dropped_events: u64,
    pub drops: Drops,
    pub threads: Vec<ThreadRow>,
    pub loops: Vec<LoopRow>,
    pub stalls: Vec<StallRow>,
    pub stall_groups: Vec<StallGroup>,
    pub syscalls: Vec<SyscallRow>,
    pub blocking: Vec<BlockingRow>,
    pub blocking_groups: Vec<BlockingGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportTarget {
    pub pid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreadRow {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyscallRow {
    pub name: String,
    pub nr: u32,
    pub count: u64,
    pub errors: u64,
    pub total_ns: u64,
    pub avg_ns: u64,
    pub max_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockingRow {
    pub syscall: String,
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub ret: i64,
    pub fd: Option<i32>,
    pub target: Option<String>,
    pub stack: Vec<Frame>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockingGroup {
    pub syscall: String,
    pub target: Option<String>,
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub tids: Vec<u32>,
    pub stack: Vec<Frame>,
}

/// An event-loop thread: how busy it was and how long its iterations ran.
#[derive(Debug, Clone, Serialize)]
pub struct LoopRow {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub iterations: u64,
    pub busy_ns: u64,
    pub idle_ns: u64,
    /// busy / (busy + idle).
    pub utilization: f64,
    /// Iteration busy time percentiles: the loop's lag.
    pub lag_p50_ns: u64,
    pub lag_p99_ns: u64,
    pub lag_max_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CauseKind {
    /// Mostly asleep in a syscall.
    Syscall,
    /// Mostly running on the CPU.
    Cpu,
    /// Mostly runnable but waiting for a CPU.
    Runqueue,
    /// No part is the majority.
    Mixed,
}

/// Why a stall happened and where in the code.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    pub kind: CauseKind,
    pub syscall: Option<String>,
    pub fd: Option<i32>,
    pub target: Option<String>,
    /// The blocking call was a wait on another event loop (nested loop).
    pub nested_loop: bool,
    /// The blocking call's stack, or the code the CPU samples share.
    pub stack: Vec<Frame>,
    /// One line for people: `blocked 300 ms in recvfrom on tcp:...`.
    pub description: String,
}

impl Cause {
    pub fn empty(kind: CauseKind) -> Self {
        Self {
            kind,
            syscall: None,
            fd: None,
            target: None,
            nested_loop: false,
            stack: Vec::new(),
            description: String::new(),
        }
    }
}

/// A loop iteration that ran at least the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct StallRow {
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub on_cpu_ns: u64,
    pub blocked_ns: u64,
    pub runqueue_ns: u64,
    pub cause: Cause,
}

/// Stalls with one cause signature (kind, syscall, code location).
#[derive(Debug, Clone, Serialize)]
pub struct StallGroup {
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub tids: Vec<u32>,
    /// The cause of the longest stall of the group.
    pub cause: Cause,
}
