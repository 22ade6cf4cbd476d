//! Records the kernel sends through the `EVENTS` ring buffer, and the map
//! values both sides read. Each record starts with an [`EventHeader`] whose
//! `kind` says which struct follows.

use crate::{FdInfo, MAX_PY_FRAMES, STACK_COPY_BYTES, TASK_COMM_LEN, hist::HIST_BUCKETS};

/// Values of [`EventHeader::kind`].
pub mod kind {
    /// [`super::SlowSyscall`]: a syscall that took at least the threshold.
    pub const SLOW_SYSCALL: u32 = 1;
    /// [`super::TaskExit`]: a traced thread exited.
    pub const TASK_EXIT: u32 = 2;
    /// [`super::Stall`]: an event-loop iteration ran at least the threshold.
    pub const STALL: u32 = 3;
    /// [`super::CpuSample`]: an on-CPU sample.
    pub const CPU_SAMPLE: u32 = 4;
    /// [`super::SlowSyscall`] sent as a futex wait *begins* on a loop thread
    /// whose runtime's park is not known yet: its stack lets userspace
    /// recognise a worker parking while it still waits.
    pub const WAIT_PROBE: u32 = 5;
    /// [`super::ProcessFork`]: a traced process started a child process,
    /// which is traced from now on.
    pub const PROCESS_FORK: u32 = 6;
    /// Lean mode: [`super::SlowSyscall`] sent as a loop thread goes to sleep
    /// inside an untraced syscall during an iteration (duration 0).
    pub const SLEEP_BEGIN: u32 = 7;
    /// Lean mode: [`super::SleepEnd`], that sleep was long enough to report.
    pub const SLEEP_END: u32 = 8;
    /// An [`super::EventHeader`] alone: process `pid` started a program in
    /// the traced cgroup (`--cgroup`), and is traced from now on.
    pub const PROCESS_JOINED: u32 = 9;
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    pub kind: u32,
    pub cpu: u32,
    /// Process id (tgid) as the initial PID namespace sees it.
    pub pid: u32,
    /// Thread id as the initial PID namespace sees it.
    pub tid: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the event was emitted.
    pub ts_ns: u64,
}

/// The user-mode registers a DWARF unwinder needs to start from.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UserRegs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

/// One CPython frame as read in the kernel: the code object and the position
/// in it. Userspace turns these into `function (file.py:line)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PyFrame {
    /// Address of the frame's code object.
    pub code: u64,
    /// Byte offset of the current instruction in the code (-1: not started).
    pub lasti: i32,
    /// `PY_FRAME_*` flags.
    pub flags: u32,
}

/// The frame is the first (outermost) Python frame run by one call of the
/// interpreter's C eval loop: native `_PyEval_EvalFrameDefault` frames and
/// these boundaries line up when stacks are merged.
pub const PY_FRAME_ENTRY: u32 = 1;
/// Not a Python frame: a shim frame CPython's C code pushes where it enters
/// the interpreter (3.12+). It marks the frame before it as an entry; the
/// kernel keeps it in the list (every turn of the walk then records one
/// frame, which keeps the verifier's work linear without `bpf_loop`) and
/// userspace drops it.
pub const PY_FRAME_SHIM: u32 = 2;

/// Python stack read at the event. `status` is one of `PY_STATUS_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyStack {
    pub len: u32,
    pub status: u32,
    pub frames: [PyFrame; MAX_PY_FRAMES],
    pub task: PyTask,
}

/// Bytes of a task's name object copied at the event: its header and up to
/// 48 (3.8–3.11) or 56 (3.12+) ASCII characters.
pub const PY_TASK_NAME_BYTES: usize = 96;

/// Awaiting tasks read at the event, at most.
pub const PY_AWAITED_BY: usize = 4;
/// Marks a `PyTask::awaited_by` entry that is a set, not a task.
pub const AWAITED_BY_SET: u64 = 1;

/// The asyncio Task the thread was running at the event, read then (it may
/// be gone by the time userspace looks).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyTask {
    /// The Task object; 0 when no task runs (a plain callback) or none was
    /// found.
    pub task: u64,
    /// The code object of the Task's coroutine.
    pub coro_code: u64,
    /// The tasks awaiting it, nearest first, as far as each is awaited by
    /// one task (3.14+): 0 ends the chain; an address with
    /// [`AWAITED_BY_SET`] set is a set of awaiting tasks, read no further.
    pub awaited_by: [u64; PY_AWAITED_BY],
    /// The first bytes of the Task's name object: a `str`, or an `int`
    /// (3.12/3.13 name tasks `Task-N` only when asked, and keep N till then).
    pub name: [u8; PY_TASK_NAME_BYTES],
}

/// The process is not a known CPython: no Python frames were read.
pub const PY_STATUS_NONE: u32 = 0;
/// The chain was read completely.
pub const PY_STATUS_OK: u32 = 1;
/// The chain was longer than `MAX_PY_FRAMES`; the outermost frames are missing.
pub const PY_STATUS_TRUNCATED: u32 = 2;
/// The thread has no Python thread state (a thread CPython does not know).
pub const PY_STATUS_NO_THREAD: u32 = 3;
/// A read of target memory failed partway.
pub const PY_STATUS_READ_ERROR: u32 = 4;

/// Everything needed to rebuild the stack of an event in userspace: user
/// registers plus a copy of the top of the user stack (unwound there with
/// DWARF CFI, since the binaries here have no frame pointers), the Python
/// frames, and the id of the kernel stack in `KERNEL_STACKS` (negative: none).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StackCapture {
    pub regs: UserRegs,
    pub kernel_stack_id: i64,
    /// Bytes of `user` that hold stack memory, starting at `regs.sp`.
    pub user_len: u32,
    pub _pad: u32,
    pub py: PyStack,
    pub user: [u8; STACK_COPY_BYTES],
}

/// The end of a sleep whose [`kind::SLEEP_BEGIN`] record began at `start_ns`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SleepEnd {
    pub header: EventHeader,
    pub start_ns: u64,
    pub asleep_ns: u64,
}

/// A syscall that ran for at least the threshold.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SlowSyscall {
    pub header: EventHeader,
    pub nr: u32,
    /// `SYSCALL_*` flags.
    pub flags: u32,
    pub ret: i64,
    /// First argument (the fd, for syscalls that take one first).
    pub arg0: u64,
    pub start_ns: u64,
    pub duration_ns: u64,
    /// Time the thread slept during the call (off CPU, not runnable).
    pub blocked_ns: u64,
    /// A futex wait on a CPython GIL: the `PyThreadState *` that held it
    /// as the wait began (0: not a GIL wait, or not read).
    pub gil_holder: u64,
    /// What `arg0` referred to, if it is a file descriptor.
    pub fd: FdInfo,
    pub comm: [u8; TASK_COMM_LEN],
    pub stack: StackCapture,
}

/// [`SlowSyscall::flags`]: the thread slept uninterruptibly (D state: disk
/// and other kernel I/O) during the call.
pub const SYSCALL_UNINTERRUPTIBLE: u32 = 1;
/// [`SlowSyscall::flags`]: the call was made inside an event-loop iteration.
pub const SYSCALL_IN_ITERATION: u32 = 2;

/// A traced thread exited; its kernel-side state has been freed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskExit {
    pub header: EventHeader,
    pub comm: [u8; TASK_COMM_LEN],
    /// Its on-CPU and run-queue time while traced.
    pub oncpu_ns: u64,
    pub runqueue_ns: u64,
}

/// A traced process forked a new process (not a thread), now traced too.
/// `header.pid` is the parent, `child` the new process.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProcessFork {
    pub header: EventHeader,
    pub child: u32,
    pub _pad: u32,
}

/// Off-CPU time shorter than the streaming minimum, summed in the kernel
/// (`OFFCPU_SHORT`, indexed by syscall number; `MAX_SYSCALL_NR`: outside
/// any syscall, e.g. a page fault).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct OffCpuTotals {
    pub count: u64,
    pub total_ns: u64,
}

/// A latency histogram (`RUNQUEUE`: how long woken or preempted threads
/// waited for a CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LatencyHist {
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub _pad: u64,
    pub hist: [u64; HIST_BUCKETS],
}

/// Per-syscall statistics, one per CPU, summed by userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SyscallStats {
    pub count: u64,
    pub errors: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub hist: [u64; HIST_BUCKETS],
}

/// Per-thread state the kernel keeps: the syscall in progress, scheduling
/// marks, and the event-loop iteration in progress. Created at a thread's
/// first syscall, updated in place, freed when the thread exits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadState {
    /// Entry time of the syscall in progress; 0 when not in a traced syscall.
    pub syscall_start_ns: u64,
    pub syscall_nr: u64,
    /// Time the thread slept (off CPU, not runnable) during this syscall.
    pub syscall_blocked_ns: u64,
    /// When the thread last went on CPU (0: unknown).
    pub oncpu_since_ns: u64,
    /// When the thread last went off CPU; 0 while it runs.
    pub offcpu_since_ns: u64,
    /// How it went off CPU: `OFFCPU_*`.
    pub offcpu_state: u64,
    /// When it was last woken (0: not since it went off CPU).
    pub wakeup_ns: u64,
    /// Totals while traced. The on-CPU total is measured on the
    /// scheduler's own count (`runtime_base_ns`), which a switch the
    /// tracepoint did not report cannot corrupt: this VM's kernel now and
    /// then switches a thread in without a `sched_switch` event.
    pub oncpu_total_ns: u64,
    pub runqueue_total_ns: u64,
    /// `SYSCALL_*` flags of the syscall in progress.
    pub syscall_flags: u64,
    /// The key (epoll fd, ...) of the thread's own idle wait, and the user
    /// stack pointer it is called with (0: the thread is not a loop yet).
    pub loop_key: u64,
    pub loop_sp: u64,
    /// 1 while the thread is in its loop's idle wait.
    pub in_idle_wait: u64,
    /// Start of the loop iteration in progress (0: none).
    pub iter_start_ns: u64,
    /// On-CPU time of the iteration, up to `oncpu_since_ns`.
    pub iter_oncpu_ns: u64,
    /// Time the iteration waited runnable (preempted, run queue).
    pub iter_runqueue_ns: u64,
    /// Time the iteration slept (blocked).
    pub iter_blocked_ns: u64,
    /// The longest syscall inside the iteration.
    pub iter_worst_nr: u64,
    pub iter_worst_ns: u64,
    pub iter_worst_arg0: u64,
    /// When that longest one began, if it is a streamed sleep whose end
    /// went unseen (see `sleep_ended_unseen`; 0: it is not).
    pub iter_worst_unseen_ns: u64,
    /// The futex of the futex wait in progress.
    pub syscall_futex: u64,
    /// Its GIL holder, if it waits on a CPython GIL (see
    /// [`SlowSyscall::gil_holder`]).
    pub syscall_gil_holder: u64,
    /// Wait probes sent so far (see `kind::WAIT_PROBE`).
    pub park_probes: u64,
    /// The thread this state belongs to; 0 marks a free slot of `THREADS`.
    pub tid: u64,
    /// The untraced syscall (or `PAGE_FAULT_NR`) the thread sleeps in
    /// (`u64::MAX`: not noted) and its first argument, noted as it went to
    /// sleep.
    pub sleep_nr: u64,
    pub sleep_arg0: u64,
    /// When that sleep began, if its stack was streamed (0: not).
    pub sleep_captured_ns: u64,
    /// Rate limits of those streams (see `sleep_capture`): interruptible
    /// sleeps, and uninterruptible ones (disk).
    pub capture_due_ns: u64,
    pub disk_capture_due_ns: u64,
    /// The scheduler's count of the thread's CPU time when its state was
    /// created (see `kernel::runtime_ns`).
    pub runtime_base_ns: u64,
    /// Where the thread's readable user stack ends (page-aligned), learnt
    /// from a stack copy cut short there; 0: not known yet.
    pub user_stack_end: u64,
    /// When the thread's last stall sample was taken (see `stall_sample`).
    pub stall_sampled_ns: u64,
    /// Time in idle waits not yet added to the loop's statistics.
    pub idle_before_ns: u64,
}

/// [`ThreadState::offcpu_state`]: asleep, interruptibly (waiting for an
/// event, a lock, a timer).
pub const OFFCPU_SLEEPING: u64 = 0;
/// Preempted: still runnable, waiting for a CPU.
pub const OFFCPU_RUNNABLE: u64 = 1;
/// Asleep uninterruptibly (D state: disk and other kernel I/O).
pub const OFFCPU_UNINTERRUPTIBLE: u64 = 2;

/// Per event-loop thread statistics (`LOOP_STATS`, keyed by tid).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LoopStats {
    pub iterations: u64,
    pub busy_ns: u64,
    pub idle_ns: u64,
    pub max_busy_ns: u64,
    /// Histogram of iteration busy time (the loop's "lag").
    pub hist: [u64; HIST_BUCKETS],
}

/// A loop iteration that ran for at least the threshold.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    pub header: EventHeader,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub oncpu_ns: u64,
    pub runqueue_ns: u64,
    pub blocked_ns: u64,
    /// The longest syscall inside the iteration (nr, duration, first arg).
    pub worst_nr: u64,
    pub worst_ns: u64,
    pub worst_arg0: u64,
    /// When the longest began, if it is a streamed sleep whose end went
    /// unseen (0: it is not): userspace ends that sleep by `worst_ns`.
    pub worst_unseen_ns: u64,
    /// The loop's idle-wait key (its epoll fd), to tell nested loops apart.
    pub loop_key: u64,
}

/// A CPU sample of a traced thread. `kind` tells why it was taken.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CpuSample {
    pub header: EventHeader,
    /// `SAMPLE_*`.
    pub reason: u32,
    pub _pad: u32,
    pub comm: [u8; TASK_COMM_LEN],
    pub stack: StackCapture,
}

/// Sampled for the CPU profile (`--rate`).
pub const SAMPLE_PROFILE: u32 = 1;
/// Sampled because the thread's loop iteration is running long.
pub const SAMPLE_STALL: u32 = 2;

const _: () = {
    assert!(core::mem::size_of::<EventHeader>() == 24);
    assert!(core::mem::size_of::<UserRegs>() == 24);
    assert!(core::mem::size_of::<PyFrame>() == 16);
    assert!(core::mem::size_of::<PyTask>() == 16 + 8 * PY_AWAITED_BY + PY_TASK_NAME_BYTES);
    assert!(
        core::mem::size_of::<PyStack>() == 8 + 16 * MAX_PY_FRAMES + core::mem::size_of::<PyTask>()
    );
    assert!(
        core::mem::size_of::<StackCapture>()
            == 40 + core::mem::size_of::<PyStack>() + STACK_COPY_BYTES
    );
    assert!(
        core::mem::size_of::<SlowSyscall>()
            == 24 + 56 + 56 + 16 + core::mem::size_of::<StackCapture>()
    );
    assert!(core::mem::size_of::<TaskExit>() == 56);
    assert!(core::mem::size_of::<SleepEnd>() == 40);
    assert!(core::mem::size_of::<ProcessFork>() == 32);
    assert!(core::mem::size_of::<LatencyHist>() == 32 + 8 * HIST_BUCKETS);
    assert!(core::mem::size_of::<SyscallStats>() == 32 + 8 * HIST_BUCKETS);
    assert!(core::mem::size_of::<ThreadState>() == 34 * 8);
    assert!(core::mem::size_of::<LoopStats>() == 32 + 8 * HIST_BUCKETS);
    assert!(core::mem::size_of::<Stall>() == 24 + 10 * 8);
    assert!(
        core::mem::size_of::<CpuSample>() == 24 + 8 + 16 + core::mem::size_of::<StackCapture>()
    );
};

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)] structs of integers with explicit
    // padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::SyscallStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ThreadState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LoopStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::OffCpuTotals {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LatencyHist {}
}
