//! Event-loop iterations: which poll-family waits are a thread's idle wait,
//! and the map work around the state machine in `tracer_common::iteration`
//! (per-loop statistics; a stall record for an iteration that ran at least
//! the threshold, with its on-CPU / run-queue / blocked split).

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap},
};
use tracer_common::{LoopStats, MAX_LOOPS, Stall, ThreadState, hist, iteration::Iteration, kind};

use crate::{
    kernel,
    maps::{header, send},
    stack::{PT_REGS_R10, pt_reg},
};

#[map]
pub static LOOP_STATS: HashMap<u32, LoopStats> = HashMap::with_max_entries(MAX_LOOPS, 0);

/// Thread id → the futex its runtime parks it on when idle, set by
/// userspace once it recognised the park in a stack.
#[map]
static PARK_FUTEXES: HashMap<u32, u64> = HashMap::with_max_entries(MAX_LOOPS, 0);

/// One zeroed `LoopStats`: the initial value for new loop threads (too big
/// for the 512-byte BPF stack).
#[map]
static ZERO_LOOP_STATS: Array<LoopStats> = Array::with_max_entries(1, 0);

// x86-64 syscall numbers of the waits an event loop idles in.
const SYS_POLL: u64 = 7;
const SYS_SELECT: u64 = 23;
const SYS_EPOLL_WAIT: u64 = 232;
const SYS_PSELECT6: u64 = 270;
const SYS_PPOLL: u64 = 271;
const SYS_EPOLL_PWAIT: u64 = 281;
const SYS_IO_URING_ENTER: u64 = 426;
const SYS_EPOLL_PWAIT2: u64 = 441;

const SYS_FUTEX: u64 = 202;

const IORING_ENTER_GETEVENTS: u64 = 1;
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAIT_BITSET: u64 = 9;
/// Masks FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME off the op.
const FUTEX_CMD_MASK: u64 = 0x7f;

/// Wait probes a thread may send (its park is usually recognised by the
/// first).
const MAX_PARK_PROBES: u64 = 8;

/// Whether `nr` is a call [`wait_key`] or [`futex_wait_key`] may claim:
/// only then are its arguments read.
#[inline(always)]
pub fn may_wait(nr: u64) -> bool {
    matches!(
        nr,
        SYS_POLL
            | SYS_SELECT
            | SYS_EPOLL_WAIT
            | SYS_PSELECT6
            | SYS_PPOLL
            | SYS_EPOLL_PWAIT
            | SYS_IO_URING_ENTER
            | SYS_EPOLL_PWAIT2
            | SYS_FUTEX
    )
}

/// The wait's key if `nr` is a poll-family call that waits for events:
/// class in the high bits, fd (where there is one) in the low bits. `args`
/// are its first three arguments, `regs` its saved registers (io_uring's
/// flags are the fourth argument).
#[inline(always)]
pub fn wait_key(nr: u64, args: &[u64; 3], regs: *const u8) -> Option<u64> {
    let [first, second, third] = *args;
    match nr {
        SYS_EPOLL_WAIT | SYS_EPOLL_PWAIT | SYS_EPOLL_PWAIT2 => {
            Some(1 << 32 | (first & 0xffff_ffff))
        }
        // Without descriptors these are sleeps (CPython < 3.11's time.sleep
        // is a select), not waits for events.
        SYS_SELECT | SYS_PSELECT6 => (first > 0).then_some(2 << 32),
        SYS_POLL | SYS_PPOLL => (second > 0).then_some(2 << 32),
        SYS_IO_URING_ENTER => {
            let flags = pt_reg(regs, PT_REGS_R10);
            (flags & IORING_ENTER_GETEVENTS != 0 && third > 0)
                .then_some(3 << 32 | (first & 0xffff_ffff))
        }
        _ => None,
    }
}

/// The futex address if `nr` is a futex wait (`args` as in [`wait_key`]).
#[inline(always)]
pub fn futex_wait_key(nr: u64, args: &[u64; 3]) -> Option<u64> {
    if nr != SYS_FUTEX {
        return None;
    }
    let [address, op, _] = *args;
    let op = op & FUTEX_CMD_MASK;
    (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET).then_some(address)
}

/// A poll-family wait with `key` called with user stack pointer `sp`
/// begins: the loop's own idle wait, or a nested loop's (blocking).
#[inline(always)]
pub fn wait_enter(
    state: &mut ThreadState,
    key: u64,
    sp: u64,
    tgid: u32,
    tid: u32,
    now: u64,
    threshold: u64,
) {
    if state.claims_idle_wait(key, sp) {
        idle_wait_enter(state, tgid, tid, now, threshold);
    }
}

/// Whether `futex` is the one userspace saw thread `tid`'s runtime park its
/// idle worker on (tokio workers park on a condvar between polls; some never
/// poll at all).
#[inline(always)]
pub fn is_park(tid: u32, futex: u64) -> bool {
    // SAFETY: read-only look at the value.
    (unsafe { PARK_FUTEXES.get(tid) }) == Some(&futex)
}

/// Whether a futex wait now beginning should send a wait probe: the thread
/// runs a loop iteration, its park is not known yet, and few were sent.
#[inline(always)]
pub fn wants_park_probe(state: &mut ThreadState, tid: u32) -> bool {
    if state.iter_start_ns == 0 || state.park_probes >= MAX_PARK_PROBES {
        return false;
    }
    // SAFETY: read-only look at the value.
    if unsafe { PARK_FUTEXES.get(tid) }.is_some() {
        return false;
    }
    state.park_probes += 1;
    true
}

/// A futex wait that turned out, while it waited, to be the thread's park:
/// the iteration ended when the wait began, and a new one starts now.
#[inline(always)]
pub fn late_park_exit(
    state: &mut ThreadState,
    tgid: u32,
    tid: u32,
    began: u64,
    now: u64,
    threshold: u64,
) {
    if let Some(iteration) = state.end_iteration_at_park(began, current_runtime_ns) {
        record(&iteration, state.loop_key, tgid, tid, began, threshold);
    }
    state.exit_idle_wait(now, now.saturating_sub(began));
}

#[inline(always)]
pub fn idle_wait_enter(state: &mut ThreadState, tgid: u32, tid: u32, now: u64, threshold: u64) {
    if let Some(iteration) = state.enter_idle_wait(now, current_runtime_ns) {
        record(&iteration, state.loop_key, tgid, tid, now, threshold);
    }
}

/// The scheduler's count of the current thread's CPU time.
fn current_runtime_ns() -> u64 {
    kernel::runtime_ns(kernel::current_task())
}

fn loop_stats(tid: u32) -> Option<*mut LoopStats> {
    if let Some(stats) = LOOP_STATS.get_ptr_mut(tid) {
        return Some(stats);
    }
    let zero = ZERO_LOOP_STATS.get(0)?;
    LOOP_STATS.insert(tid, zero, 0).ok()?;
    LOOP_STATS.get_ptr_mut(tid)
}

/// A finished iteration into the loop's statistics, and streamed as a
/// stall if it ran at least the threshold. Inlined: a BPF function takes
/// at most five arguments.
#[inline(always)]
fn record(iteration: &Iteration, loop_key: u64, tgid: u32, tid: u32, now: u64, threshold: u64) {
    let busy = iteration.busy_ns;
    if let Some(stats) = loop_stats(tid) {
        let bucket = hist::bucket(busy) & (hist::HIST_BUCKETS - 1);
        // SAFETY: only this thread updates its entry.
        unsafe {
            (*stats).idle_ns += iteration.idle_before_ns;
            (*stats).iterations += 1;
            (*stats).busy_ns += busy;
            if busy > (*stats).max_busy_ns {
                (*stats).max_busy_ns = busy;
            }
            (*stats).hist[bucket] += 1;
        }
    }
    if busy < threshold {
        return;
    }
    send(Stall {
        header: header(kind::STALL, tgid, tid, now),
        start_ns: iteration.start_ns,
        duration_ns: busy,
        oncpu_ns: iteration.oncpu_ns,
        runqueue_ns: iteration.runqueue_ns,
        blocked_ns: iteration.blocked_ns,
        worst_nr: iteration.worst_nr,
        worst_ns: iteration.worst_ns,
        worst_arg0: iteration.worst_arg0,
        worst_unseen_ns: iteration.worst_unseen_ns,
        loop_key,
    });
}
