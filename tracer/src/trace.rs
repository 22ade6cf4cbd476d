//! What a trace recorded, fully resolved (stacks symbolized, fds described):
//! the input of the pure analysis, and what a recording file holds. Times are
//! nanoseconds since the start of the recording.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub pid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
}

/// One frame of a stack, innermost first in a [`Stack`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The ELF module (file name) the code is in; Python frames: none.
    pub module: Option<String>,
    pub kind: FrameKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    Native,
    Kernel,
    Python,
    /// A marker where the unwinder stopped before the outermost frame
    /// (stack deeper than the copy, or code without unwind information).
    Truncated,
}

pub type Stack = Vec<Frame>;
/// Index into [`Trace::stacks`].
pub type StackId = u32;

/// Statistics of one syscall, summed over CPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallTotals {
    pub nr: u32,
    pub count: u64,
    pub errors: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    /// Log-linear histogram, see `tracer_common::hist`.
    pub hist: Vec<u64>,
}

/// A syscall that took at least the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockingCall {
    pub pid: u32,
    pub tid: u32,
    pub nr: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub ret: i64,
    pub fd: Option<i32>,
    /// What the fd referred to, e.g. `tcp:127.0.0.1:5000->127.0.0.1:80`.
    pub target: Option<String>,
    pub stack: StackId,
}

/// Events the tracer could not record, by cause. All zero in a complete trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Kernel events lost because the ring buffer was full.
    pub ringbuf_full: u64,
    /// Syscalls not tracked because the per-thread map was full.
    pub thread_map_full: u64,
    /// Kernel stacks lost (stack map full).
    pub kernel_stacks: u64,
    /// Child processes not followed because the process map was full.
    pub process_map_full: u64,
}

impl Drops {
    pub fn total(&self) -> u64 {
        self.ringbuf_full + self.thread_map_full + self.kernel_stacks + self.process_map_full
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub target: TargetInfo,
    /// Wall-clock time the recording started (Unix epoch, milliseconds).
    pub started_unix_ms: u64,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    /// How the recording ended, e.g. "duration elapsed", "target exited".
    pub ended_by: String,
    pub threads: Vec<ThreadInfo>,
    pub syscalls: Vec<SyscallTotals>,
    pub blocking: Vec<BlockingCall>,
    pub stacks: Vec<Stack>,
    pub drops: Drops,
}
