//! What a trace recorded, fully resolved (stacks symbolized, fds described):
//! the input of the pure analysis, and what a recording file holds. Times are
//! nanoseconds since the start of the recording.

use serde::{Deserialize, Serialize, Serializer, ser::SerializeStruct};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub pid: u32,
    pub comm: String,
    pub cmdline: Vec<String>,
}

/// A traced process: the target, or a child it started while traced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The traced process that started it (None for the target).
    pub parent: Option<u32>,
    pub comm: String,
    pub cmdline: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// On-CPU time while traced, from the scheduler (None: not known).
    pub oncpu_ns: Option<u64>,
    /// Time runnable but waiting for a CPU, from the scheduler.
    pub runqueue_ns: Option<u64>,
}

/// One frame of a stack, innermost first in a [`Stack`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct Frame {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The column on `line` (1-based), where known: JavaScript frames.
    /// Left out of JSON where unknown (other frames' JSON is as before).
    #[serde(default)]
    pub column: Option<u32>,
    /// The ELF module (file name) the code is in; Python frames: none.
    pub module: Option<String>,
    pub kind: FrameKind,
}

/// As derived, except that human-readable formats (JSON) leave out an
/// unknown column; recordings (postcard reads fields by position) always
/// hold it.
impl Serialize for Frame {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let with_column = self.column.is_some() || !serializer.is_human_readable();
        let mut out = serializer.serialize_struct("Frame", 5 + usize::from(with_column))?;
        out.serialize_field("function", &self.function)?;
        out.serialize_field("file", &self.file)?;
        out.serialize_field("line", &self.line)?;
        if with_column {
            out.serialize_field("column", &self.column)?;
        } else {
            out.skip_field("column")?;
        }
        out.serialize_field("module", &self.module)?;
        out.serialize_field("kind", &self.kind)?;
        out.end()
    }
}

impl Frame {
    /// Where in its file the frame is, as reports show it after the file:
    /// `line`, or `line:column` where the column is known.
    pub fn position(&self) -> Option<String> {
        let line = self.line?;
        Some(match self.column {
            Some(column) => format!("{line}:{column}"),
            None => line.to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    Native,
    Kernel,
    Python,
    /// A JavaScript function run by V8 (Node.js): `file` is its script.
    Js,
    /// A marker where the unwinder stopped before the outermost frame
    /// (stack deeper than the copy, or code without unwind information).
    Truncated,
}

impl FrameKind {
    /// Python or JavaScript: where such frames are, they are the code
    /// location people look for, and the runtime's native frames only
    /// carry them.
    pub fn is_script(self) -> bool {
        matches!(self, Self::Python | Self::Js)
    }
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

/// What kind of thing a file descriptor was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdKind {
    Socket,
    Pipe,
    File,
    Other,
    Unknown,
}

/// A streamed syscall: one that took at least the threshold (a blocking
/// call), or slept at least the off-CPU minimum (for the off-CPU profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockingCall {
    pub pid: u32,
    pub tid: u32,
    pub nr: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub ret: i64,
    /// The first argument, as is.
    pub arg0: u64,
    pub fd: Option<i32>,
    /// What the fd referred to, e.g. `tcp:127.0.0.1:5000->127.0.0.1:80`.
    pub target: Option<String>,
    pub fd_kind: FdKind,
    /// Part of the call the thread slept (off CPU, not runnable).
    pub blocked_ns: u64,
    /// It slept uninterruptibly (D state: disk and other kernel I/O).
    pub uninterruptible: bool,
    pub stack: StackId,
    /// The asyncio Task the thread ran, read at the call.
    pub task: Option<TaskInfo>,
    /// A futex wait on the process's CPython GIL.
    pub gil: Option<GilWait>,
}

/// An asyncio Task, as read at an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The name given to `create_task(name=...)`, or `Task-N`.
    pub name: String,
    /// Its coroutine's qualified name.
    pub coro: String,
    /// The tasks awaiting it, nearest first (3.14+: its awaited-by chain).
    pub awaited_by: Vec<String>,
}

/// A wait for the GIL, and who held it as the wait began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GilWait {
    /// The thread that held it (None: it could not be read or named).
    pub holder_tid: Option<u32>,
}

/// Streamed calls beyond the number kept one by one, summed per (thread,
/// syscall, stack, target): a long trace of a busy target stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallGroup {
    /// The first call of the group (its duration and times are the first's).
    pub first: BlockingCall,
    pub count: u64,
    /// Calls of at least the threshold (blocking calls), their total and max.
    pub blocking_count: u64,
    pub blocking_ns: u64,
    pub blocking_max_ns: u64,
    /// Calls that slept at least the off-CPU minimum, and that sleep.
    pub offcpu_count: u64,
    pub offcpu_ns: u64,
}

/// Off-CPU time in spans below the streaming minimum, summed by syscall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortOffCpu {
    /// `PAGE_FAULT_NR`: asleep outside any syscall, in page faults. None
    /// only in recordings made before page faults had that number.
    pub nr: Option<u32>,
    pub count: u64,
    pub total_ns: u64,
}

/// How long runnable threads waited for a CPU (run-queue latency).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunqueueLatency {
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub hist: Vec<u64>,
}

/// A thread seen running an event loop (waiting in a poll-family call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopThread {
    pub pid: u32,
    pub tid: u32,
    pub iterations: u64,
    pub busy_ns: u64,
    pub idle_ns: u64,
    pub max_busy_ns: u64,
    /// Histogram of iteration busy time, see `tracer_common::hist`.
    pub hist: Vec<u64>,
}

/// What one loop thread did during one window of time (the session reads
/// the kernel's loop statistics every 100 ms): how iterations add up in a
/// timeline without one slice per iteration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopWindow {
    pub tid: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    /// Iterations that ended in the window.
    pub iterations: u64,
    /// Busy time of those iterations.
    pub busy_ns: u64,
}

/// A syscall as the kernel summarised it inside a stall (no stack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallSummary {
    pub nr: u32,
    pub duration_ns: u64,
    pub fd: Option<i32>,
    pub target: Option<String>,
}

/// A loop iteration that ran for at least the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallRecord {
    pub pid: u32,
    pub tid: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub oncpu_ns: u64,
    pub runqueue_ns: u64,
    pub blocked_ns: u64,
    /// The longest syscall of the iteration.
    pub longest: Option<SyscallSummary>,
    /// The longest syscall was a poll-family wait on another key than the
    /// loop's own: a nested event loop.
    pub nested_loop: bool,
}

/// An on-CPU sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub pid: u32,
    pub tid: u32,
    pub time_ns: u64,
    /// Taken because a loop iteration ran long, not for the profile.
    pub for_stall: bool,
    pub stack: StackId,
    /// The asyncio Task the thread ran, read at the sample.
    pub task: Option<TaskInfo>,
}

/// Events the tracer could not record, by cause. All zero in a complete trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Kernel events lost because the ring buffer was full.
    pub ringbuf_full: u64,
    /// Syscalls not tracked because the per-thread map was full.
    pub thread_map_full: u64,
    /// Samples whose kernel stack could not be recorded.
    pub kernel_stacks: u64,
    /// Child processes not followed because the process map was full.
    pub process_map_full: u64,
}

impl Drops {
    /// Events lost. (A missing kernel stack loses part of an event, not an
    /// event: it is counted apart.)
    pub fn total(&self) -> u64 {
        self.ringbuf_full + self.thread_map_full + self.process_map_full
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub target: TargetInfo,
    /// Wall-clock time the recording started (Unix epoch, milliseconds).
    pub started_unix_ms: u64,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    /// Syscalls that slept at least this long were streamed.
    pub offcpu_min_ns: u64,
    /// Lean mode (without `--all-syscalls`): only the poll-family and futex
    /// syscalls were traced;
    /// blocking calls are the sleeps inside loop iterations.
    #[serde(default)]
    pub lean: bool,
    /// How the recording ended, e.g. "duration elapsed", "target exited".
    pub ended_by: String,
    /// Every traced process, the target first.
    pub processes: Vec<ProcessInfo>,
    pub threads: Vec<ThreadInfo>,
    pub syscalls: Vec<SyscallTotals>,
    pub blocking: Vec<BlockingCall>,
    /// Streamed calls not kept one by one (see [`CallGroup`]).
    pub call_groups: Vec<CallGroup>,
    pub loops: Vec<LoopThread>,
    pub loop_windows: Vec<LoopWindow>,
    pub stalls: Vec<StallRecord>,
    pub samples: Vec<SampleRecord>,
    /// CPU profile sampling frequency (0: no profile).
    pub profile_hz: u64,
    pub offcpu_short: Vec<ShortOffCpu>,
    pub runqueue: RunqueueLatency,
    pub stacks: Vec<Stack>,
    pub drops: Drops,
    /// What the kernel it ran on could not do, one line each (e.g. shorter
    /// Python stacks without `bpf_loop`).
    pub kernel_limits: Vec<String>,
    /// With `--cgroup`: the cgroup traced, from the root of its mount.
    pub cgroup: Option<String>,
}

impl Trace {
    /// The frames of stack `id` (empty if there is no such stack).
    pub fn stack(&self, id: StackId) -> Stack {
        self.stacks.get(id as usize).cloned().unwrap_or_default()
    }

    /// The streamed calls that took at least the threshold: the blocking
    /// calls (the others were streamed for the off-CPU profile only).
    pub fn blocking_calls(&self) -> impl Iterator<Item = &BlockingCall> {
        self.blocking
            .iter()
            .filter(|call| call.duration_ns >= self.threshold_ns)
    }

    /// Whether thread `tid` ran an event loop.
    pub fn is_loop_thread(&self, tid: u32) -> bool {
        self.loops.iter().any(|l| l.tid == tid && l.iterations > 0)
    }

    /// A trace of `target` with nothing recorded yet.
    pub fn empty(target: TargetInfo) -> Self {
        Self {
            target,
            started_unix_ms: 0,
            duration_ns: 0,
            threshold_ns: 0,
            offcpu_min_ns: 0,
            lean: false,
            ended_by: String::new(),
            processes: Vec::new(),
            threads: Vec::new(),
            syscalls: Vec::new(),
            blocking: Vec::new(),
            call_groups: Vec::new(),
            loops: Vec::new(),
            loop_windows: Vec::new(),
            stalls: Vec::new(),
            samples: Vec::new(),
            profile_hz: 0,
            offcpu_short: Vec::new(),
            runqueue: RunqueueLatency::default(),
            stacks: Vec::new(),
            drops: Drops::default(),
            kernel_limits: Vec::new(),
            cgroup: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(column: Option<u32>, kind: FrameKind) -> Frame {
        Frame {
            function: "runBuild".to_string(),
            file: Some("/srv/app/build.js".to_string()),
            line: Some(12),
            column,
            module: None,
            kind,
        }
    }

    #[test]
    fn json_has_a_column_only_where_known() {
        let js = frame(Some(5), FrameKind::Js);
        let json = serde_json::to_value(&js).unwrap();
        assert_eq!(json["column"], 5);
        assert_eq!(serde_json::from_value::<Frame>(json).unwrap(), js);
        assert_eq!(js.position().as_deref(), Some("12:5"));
        let python = frame(None, FrameKind::Python);
        let json = serde_json::to_value(&python).unwrap();
        assert!(json.get("column").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<Frame>(json).unwrap(), python);
        assert_eq!(python.position().as_deref(), Some("12"));
    }

    #[test]
    fn recordings_hold_the_column_either_way() {
        for column in [None, Some(5)] {
            let frame = frame(column, FrameKind::Js);
            let bytes = postcard::to_stdvec(&frame).unwrap();
            assert_eq!(postcard::from_bytes::<Frame>(&bytes).unwrap(), frame);
        }
    }
}
