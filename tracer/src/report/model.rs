//! The report as data: what `--json` writes (docs/json.md documents it;
//! changes must be additive) and what the text report renders.

use serde::Serialize;

use crate::{
    analyze::offcpu::WaitReason,
    trace::{Drops, Frame, ProcessInfo, TaskInfo},
};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub target: ReportTarget,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    /// Lean mode (the default; not with `--all-syscalls`): `syscalls` counts only the poll-family and
    /// futex calls, and `blocking` holds sleeps inside loop iterations.
    pub lean: bool,
    pub ended_by: String,
    /// Sum of `drops`: events the tracer could not record.
    pub dropped_events: u64,
    pub drops: Drops,
    /// What the kernel could not do, one line each.
    pub kernel_limits: Vec<String>,
    /// The target, then the child processes it started while traced.
    pub processes: Vec<ProcessInfo>,
    pub threads: Vec<ThreadRow>,
    pub loops: Vec<LoopRow>,
    pub stalls: Vec<StallRow>,
    pub stall_groups: Vec<StallGroup>,
    /// The stalls grouped by the name pattern of their asyncio Task
    /// (`fetch-user-*`; stalls outside tasks in one group with no task).
    pub stall_task_groups: Vec<StallGroup>,
    pub syscalls: Vec<SyscallRow>,
    pub blocking: Vec<BlockingRow>,
    /// Blocking calls not listed in `blocking` one by one (a busy target
    /// makes too many); `blocking_groups` counts them all.
    pub blocking_omitted: u64,
    pub blocking_groups: Vec<BlockingGroup>,
    pub cpu: CpuProfile,
    pub off_cpu: Vec<OffCpuRow>,
    /// Threads that waited for a CPython GIL, and who held it.
    pub gil_waits: Vec<GilWaitRow>,
    pub runqueue: RunqueueRow,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportTarget {
    pub pid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
    /// With `--cgroup`: the cgroup traced (the pid is its first process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
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
    /// The asyncio Task that made the call (null: none ran).
    pub task: Option<TaskInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockingGroup {
    pub syscall: String,
    pub target: Option<String>,
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub tids: Vec<u32>,
    /// Some call was made by an event-loop thread (it stalled the loop).
    pub on_loop_thread: bool,
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
    /// Time its iterations waited for the GIL, and the thread that held it
    /// most of that time.
    pub gil_wait_ns: u64,
    pub gil_holder: Option<ThreadRef>,
}

/// A thread, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadRef {
    pub tid: u32,
    pub comm: String,
}

/// A thread that waited for the GIL, and the threads that held it.
#[derive(Debug, Clone, Serialize)]
pub struct GilWaitRow {
    pub tid: u32,
    pub comm: String,
    pub total_ns: u64,
    pub count: u64,
    /// Most time first.
    pub holders: Vec<GilHolderRow>,
}

/// A thread that held the GIL while another waited for it.
#[derive(Debug, Clone, Serialize)]
pub struct GilHolderRow {
    /// None: the holder could not be read or named.
    pub tid: Option<u32>,
    pub comm: Option<String>,
    pub total_ns: u64,
    pub count: u64,
    /// Where it was: the path its CPU samples during those waits share.
    pub stack: Vec<Frame>,
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
    /// Mostly waiting for the GIL, which another thread held.
    Gil,
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
    /// A GIL stall: the thread that held the GIL most of the time (and
    /// `stack` is where it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gil_holder: Option<ThreadRef>,
    /// The blocking call's stack, or the code the CPU samples share.
    pub stack: Vec<Frame>,
    /// The asyncio Task running that call or code (null: none ran, e.g. a
    /// plain callback).
    pub task: Option<TaskInfo>,
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
            gil_holder: None,
            stack: Vec::new(),
            task: None,
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
    /// In `stall_task_groups`: the task name pattern (null: no task).
    pub task: Option<String>,
    /// The cause of the longest stall of the group.
    pub cause: Cause,
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuProfile {
    /// Sampling frequency (0: the profile was off).
    pub hz: u64,
    pub samples: u64,
    pub threads: Vec<CpuThread>,
    /// Functions with the most samples on top of the stack (`self`), then in
    /// it (`total`).
    pub top: Vec<TopFunction>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuThread {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// On-CPU time from the scheduler.
    pub cpu_ns: u64,
    /// `cpu_ns` as a share of one core over the recording.
    pub core_percent: f64,
    pub samples: u64,
    /// `samples` / hz: the sampler's estimate of `cpu_ns`.
    pub sampled_cpu_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopFunction {
    pub function: String,
    #[serde(rename = "self")]
    pub self_samples: u64,
    #[serde(rename = "total")]
    pub total_samples: u64,
}

/// Time asleep for one reason (and thread, stack and target, where known).
#[derive(Debug, Clone, Serialize)]
pub struct OffCpuRow {
    pub reason: WaitReason,
    /// None for short waits summed over all threads.
    pub tid: Option<u32>,
    pub comm: Option<String>,
    pub syscall: Option<String>,
    pub target: Option<String>,
    pub total_ns: u64,
    pub count: u64,
    pub stack: Vec<Frame>,
    /// The asyncio Task that slept (null: none ran).
    pub task: Option<TaskInfo>,
}

/// Run-queue latency: runnable threads waiting for a CPU.
#[derive(Debug, Clone, Serialize)]
pub struct RunqueueRow {
    pub count: u64,
    pub total_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}
