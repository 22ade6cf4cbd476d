//! Maps shared by several programs.

use aya_ebpf::{
    macros::map,
    maps::{HashMap, PerCpuArray, RingBuf, StackTrace},
};
use tracer_common::{
    MAX_PROCESSES, MAX_SYSCALL_NR, MAX_THREADS, SyscallStats, ThreadState, counter,
};

/// Processes (tgids) being traced. Value: unused flags.
#[map]
pub static TRACED: HashMap<u32, u32> = HashMap::with_max_entries(MAX_PROCESSES, 0);

/// Per-thread state, inserted at a thread's first syscall, updated in place
/// afterwards and removed when the thread exits.
#[map]
pub static THREADS: HashMap<u32, ThreadState> = HashMap::with_max_entries(MAX_THREADS, 0);

/// Per-syscall statistics indexed by syscall number.
#[map]
pub static SYSCALL_STATS: PerCpuArray<SyscallStats> =
    PerCpuArray::with_max_entries(MAX_SYSCALL_NR, 0);

/// Counters (drops and deliveries), see `tracer_common::counter`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Rare events for userspace: slow syscalls, thread exits.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Kernel stacks, referenced by id from events.
#[map]
pub static KERNEL_STACKS: StackTrace = StackTrace::with_max_entries(8192, 0);

/// The thread's state, created when first needed.
#[inline(always)]
pub fn thread_state(tid: u32) -> Option<&'static mut ThreadState> {
    if THREADS.get_ptr_mut(tid).is_none() {
        THREADS.insert(tid, ThreadState::default(), 0).ok()?;
    }
    // SAFETY: map values live as long as their entry; only this thread's
    // own events write it, and they do not run at once.
    THREADS.get_ptr_mut(tid).map(|state| unsafe { &mut *state })
}
