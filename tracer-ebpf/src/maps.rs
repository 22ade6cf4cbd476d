//! Maps shared by several programs.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf, StackTrace},
};
use tracer_common::{
    EventHeader, MAX_PROCESSES, MAX_SYSCALL_NR, MAX_THREADS, SyscallStats, ThreadState, counter,
};

use crate::{counters::bump, helpers::cpu_id, kernel};

/// Processes (tgids) being traced. Value: unused flags.
#[map]
pub static TRACED: HashMap<u32, u32> = HashMap::with_max_entries(MAX_PROCESSES, 0);

/// Per-thread state, in slot `tid % MAX_THREADS`: found with an array
/// lookup (a few instructions; a hash lookup costs about 45 ns here, and
/// this runs twice per syscall). A thread whose slot another live thread
/// holds has its state in `THREADS_OVERFLOW`.
#[map]
pub static THREADS: Array<ThreadState> = Array::with_max_entries(MAX_THREADS, 0);

#[map]
pub static THREADS_OVERFLOW: HashMap<u32, ThreadState> = HashMap::with_max_entries(MAX_THREADS, 0);

/// One zeroed `ThreadState`: what a new entry of `THREADS_OVERFLOW` is
/// inserted from.
#[map]
static ZERO_THREAD_STATE: Array<ThreadState> = Array::with_max_entries(1, 0);

/// Per-syscall statistics indexed by syscall number.
#[map]
pub static SYSCALL_STATS: PerCpuArray<SyscallStats> =
    PerCpuArray::with_max_entries(MAX_SYSCALL_NR, 0);

/// Counters (drops and deliveries), see `tracer_common::counter`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Events for userspace: slow syscalls, stalls, CPU samples, thread exits.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// A batched record wakes the reader after all once this much is unread.
const WAKE_AT_BYTES: u64 = 2 * 1024 * 1024;

/// Kernel stacks, referenced by id from events.
#[map]
pub static KERNEL_STACKS: StackTrace = StackTrace::with_max_entries(8192, 0);

/// The header of a record of `kind` about thread `tid` of process `tgid`,
/// sent at `now`.
#[inline(always)]
pub fn header(kind: u32, tgid: u32, tid: u32, now: u64) -> EventHeader {
    EventHeader {
        kind,
        cpu: cpu_id(),
        pid: tgid,
        tid,
        ts_ns: now,
    }
}

/// Streams a small record through `EVENTS` (the records that carry a stack
/// are filled in place instead); one that does not fit is counted as lost.
#[inline(always)]
pub fn send<T: 'static>(record: T) {
    let Some(mut entry) = EVENTS.reserve::<T>(0) else {
        bump(counter::DROP_RINGBUF_FULL);
        return;
    };
    entry.write(record);
    entry.submit(0);
    bump(counter::EVENTS_SENT);
}

/// Submit flags for a record that can wait for the reader's periodic drain
/// (userspace reads every 50 ms). Waking the reader costs the submitting
/// CPU a self-interrupt, 5-7 µs on this VM, and the reader a context
/// switch: most of the cost of a CPU sample, and samples are the most
/// frequent records.
#[inline(always)]
pub fn batched() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA.into()) >= WAKE_AT_BYTES {
        BPF_RB_FORCE_WAKEUP.into()
    } else {
        BPF_RB_NO_WAKEUP.into()
    }
}

#[inline(always)]
fn slot(tid: u32) -> Option<*mut ThreadState> {
    THREADS.get_ptr_mut(tid & (MAX_THREADS - 1))
}

/// The thread's state, if it has one.
#[inline(always)]
pub fn existing_thread_state(tid: u32) -> Option<&'static mut ThreadState> {
    let slot = slot(tid)?;
    // SAFETY: map values live as long as the map; only this thread's own
    // events write its state, and they do not run at once.
    unsafe {
        if (*slot).tid == u64::from(tid) {
            return Some(&mut *slot);
        }
        THREADS_OVERFLOW.get_ptr_mut(tid).map(|state| &mut *state)
    }
}

/// The thread's state, created when first needed. Two new threads claiming
/// one free slot at the same instant would share it (there is no
/// compare-and-swap here): it takes threads whose ids differ by a multiple
/// of MAX_THREADS starting within the same few instructions. `task` gives
/// the thread's `task_struct *`, asked for only to create the state. A new
/// state is zeroed in its slot, not built on the BPF stack (256 bytes of
/// the 512 a call chain may use).
#[inline(always)]
pub fn thread_state(tid: u32, task: impl FnOnce() -> u64) -> Option<&'static mut ThreadState> {
    if let Some(state) = existing_thread_state(tid) {
        return Some(state);
    }
    let slot = slot(tid)?;
    // SAFETY: as in existing_thread_state.
    let state = unsafe {
        if (*slot).tid == 0 {
            core::ptr::write_bytes(slot, 0, 1);
            &mut *slot
        } else {
            THREADS_OVERFLOW
                .insert(tid, ZERO_THREAD_STATE.get(0)?, 0)
                .ok()?;
            &mut *THREADS_OVERFLOW.get_ptr_mut(tid)?
        }
    };
    state.tid = u64::from(tid);
    state.runtime_base_ns = kernel::runtime_ns(task());
    Some(state)
}

/// Frees the thread's state; returns what `last` reads of it first.
#[inline(always)]
pub fn free_thread_state<R>(tid: u32, last: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    let slot = slot(tid)?;
    // SAFETY: as in existing_thread_state.
    unsafe {
        if (*slot).tid == u64::from(tid) {
            let result = last(&*slot);
            (*slot).tid = 0;
            return Some(result);
        }
        let result = THREADS_OVERFLOW.get(tid).map(last);
        let _ = THREADS_OVERFLOW.remove(tid);
        result
    }
}
