//! Types shared by the kernel programs (`tracer-ebpf`) and the userspace
//! loader (`tracer`). Everything here is `#[repr(C)]` with explicit padding
//! so both sides agree byte for byte; sizes are asserted at compile time.
#![cfg_attr(not(test), no_std)]

pub mod event;
pub mod gil;
pub mod hist;
pub mod iteration;
pub mod kernel;
pub mod python;
pub mod sleep_capture;
pub mod stall_sample;
pub mod switches;

pub use event::*;
pub use kernel::{FdInfo, KernelOffsets};
pub use python::{PyOffsets, PyProcess};

/// Map names, as the kernel object declares them and userspace looks them up.
pub mod maps {
    pub const TRACED: &str = "TRACED";
    pub const THREADS: &str = "THREADS";
    pub const THREADS_OVERFLOW: &str = "THREADS_OVERFLOW";
    pub const SYSCALL_STATS: &str = "SYSCALL_STATS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const EVENTS: &str = "EVENTS";
    pub const KERNEL_STACKS: &str = "KERNEL_STACKS";
    pub const PY_PROCS: &str = "PY_PROCS";
    pub const PY_THREADS: &str = "PY_THREADS";
    pub const LOOP_STATS: &str = "LOOP_STATS";
    pub const PARK_FUTEXES: &str = "PARK_FUTEXES";
    pub const OFFCPU_SHORT: &str = "OFFCPU_SHORT";
    pub const RUNQUEUE: &str = "RUNQUEUE";
    pub const SLEEP_CAPTURE: &str = "SLEEP_CAPTURE";
    pub const STOPPED: &str = "STOPPED";
    pub const CGROUPS: &str = "CGROUPS";
    pub const GIL_STATES: &str = "GIL_STATES";
}

/// Names of the settings (`Global` statics) userspace overrides at load time.
pub mod globals {
    pub const THRESHOLD_NS: &str = "THRESHOLD_NS";
    pub const KERNEL: &str = "KERNEL";
    pub const STALL_SAMPLE_AFTER_NS: &str = "STALL_SAMPLE_AFTER_NS";
    pub const OFFCPU_MIN_NS: &str = "OFFCPU_MIN_NS";
    pub const FOLLOW_CHILDREN: &str = "FOLLOW_CHILDREN";
    pub const TRACE_BY_MAP: &str = "TRACE_BY_MAP";
    pub const TRACE_CGROUPS: &str = "TRACE_CGROUPS";
    pub const TARGET_TGID: &str = "TARGET_TGID";
    pub const SWITCH_STATE_ARG: &str = "SWITCH_STATE_ARG";
}

/// Syscall numbers below this have per-syscall statistics (x86-64 has < 470).
pub const MAX_SYSCALL_NR: u32 = 512;
/// A sleep in a page fault is reported as a call of this number.
pub const PAGE_FAULT_NR: u32 = MAX_SYSCALL_NR;
/// Length of a task's `comm`, including the trailing NUL.
pub const TASK_COMM_LEN: usize = 16;
/// Bytes of user stack copied (from the stack pointer up) for DWARF unwinding.
/// 16 KiB is too little for node (libuv keeps a 12 KiB array on the stack).
pub const STACK_COPY_BYTES: usize = 32 * 1024;
/// Python frames read per event.
pub const MAX_PY_FRAMES: usize = 64;
/// Threads tracked at once (per-thread syscall state); more are counted as drops.
pub const MAX_THREADS: u32 = 16384;
/// Processes tracked at once.
pub const MAX_PROCESSES: u32 = 1024;
/// Most cgroups traced with `--cgroup`: the one given and its descendants
/// (a pod's containers, a slice's services).
pub const MAX_CGROUPS: u32 = 1024;
/// Event-loop threads tracked at once.
pub const MAX_LOOPS: u32 = 1024;
/// Depth of kernel stacks in the stack map.
pub const KERNEL_STACK_DEPTH: usize = 127;

/// Indices into the per-CPU `COUNTERS` array. Every event the kernel side could
/// not deliver is counted here, so the report can say what it missed.
pub mod counter {
    /// Events lost because the ring buffer was full.
    pub const DROP_RINGBUF_FULL: u32 = 0;
    /// Threads not tracked because the per-thread map was full.
    pub const DROP_THREAD_MAP_FULL: u32 = 1;
    /// Kernel stacks lost (stack map full or collision).
    pub const DROP_KERNEL_STACK: u32 = 2;
    /// Events delivered to the ring buffer.
    pub const EVENTS_SENT: u32 = 3;
    /// Processes not followed because the traced-process map was full.
    pub const DROP_PROCESS_MAP_FULL: u32 = 4;
    /// With `PyTaskOffsets::timed`: asyncio Task lookups made at events,
    /// their total time (ns), and the total of an empty interval between
    /// two clock reads, taken once per lookup (what timing itself adds).
    pub const TASK_LOOKUPS: u32 = 5;
    pub const TASK_LOOKUP_NS: u32 = 6;
    pub const TASK_LOOKUP_CLOCK_NS: u32 = 7;
    pub const COUNT: u32 = 8;
}
