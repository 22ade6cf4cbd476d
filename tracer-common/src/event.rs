//! Records the kernel sends through the `EVENTS` ring buffer, and the map
//! values both sides read. Each record starts with an [`EventHeader`] whose
//! `kind` says which struct follows.

use crate::{MAX_PY_FRAMES, STACK_COPY_BYTES, TASK_COMM_LEN, hist::HIST_BUCKETS};

/// Values of [`EventHeader::kind`].
pub mod kind {
    /// [`super::SlowSyscall`]: a syscall that took at least the threshold.
    pub const SLOW_SYSCALL: u32 = 1;
    /// [`super::TaskExit`]: a traced thread exited.
    pub const TASK_EXIT: u32 = 2;
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

/// Python stack read at the event. `status` is one of `PY_STATUS_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PyStack {
    pub len: u32,
    pub status: u32,
    pub frames: [PyFrame; MAX_PY_FRAMES],
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

/// A syscall that ran for at least the threshold.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SlowSyscall {
    pub header: EventHeader,
    pub nr: u32,
    pub _pad: u32,
    pub ret: i64,
    /// First argument (the fd, for syscalls that take one first).
    pub arg0: u64,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub comm: [u8; TASK_COMM_LEN],
    pub stack: StackCapture,
}

/// A traced thread exited; its kernel-side state has been freed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskExit {
    pub header: EventHeader,
    pub comm: [u8; TASK_COMM_LEN],
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

/// Per-thread state the kernel keeps between a syscall's entry and exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadState {
    /// Entry time of the syscall in progress; 0 when not in a traced syscall.
    pub syscall_start_ns: u64,
    pub syscall_nr: u64,
}

const _: () = {
    assert!(core::mem::size_of::<EventHeader>() == 24);
    assert!(core::mem::size_of::<UserRegs>() == 24);
    assert!(core::mem::size_of::<PyFrame>() == 16);
    assert!(core::mem::size_of::<PyStack>() == 8 + 16 * MAX_PY_FRAMES);
    assert!(
        core::mem::size_of::<StackCapture>() == 40 + (8 + 16 * MAX_PY_FRAMES) + STACK_COPY_BYTES
    );
    assert!(
        core::mem::size_of::<SlowSyscall>() == 24 + 40 + 16 + core::mem::size_of::<StackCapture>()
    );
    assert!(core::mem::size_of::<TaskExit>() == 40);
    assert!(core::mem::size_of::<SyscallStats>() == 32 + 8 * HIST_BUCKETS);
    assert!(core::mem::size_of::<ThreadState>() == 16);
};

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)] structs of integers with explicit
    // padding fields, so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::SyscallStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ThreadState {}
}
