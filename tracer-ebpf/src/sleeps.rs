//! Sleeps outside the calls the programs trace: in lean mode, the syscalls
//! not traced (a blocking recv inside a callback); in any mode, page faults
//! (a page of code or data read from disk, a userfaultfd) and calls that
//! began before tracing did. Where the scheduler switches the thread out,
//! the saved user registers tell which (a syscall's number and first
//! argument, or a fault), and the stack is still the caller's.

use aya_ebpf::{
    macros::{map, raw_tracepoint},
    maps::ProgramArray,
    programs::RawTracePointContext,
};
use tracer_common::{
    MAX_SYSCALL_NR, OFFCPU_UNINTERRUPTIBLE, PAGE_FAULT_NR, SYSCALL_IN_ITERATION,
    SYSCALL_UNINTERRUPTIBLE, SleepEnd, ThreadState, kind, switches::OffCpu,
};

use crate::{
    maps::{existing_thread_state, header, send},
    sched::add_short_offcpu,
    stack::{PT_REGS_AX, PT_REGS_ORIG_AX, current_pt_regs, first_arg, pt_reg},
    syscalls::{Call, Detail, OFFCPU_MIN_NS, THRESHOLD_NS, emit},
    target::current_traced,
};

/// Slot 0: `sleep_capture`, set by userspace.
#[map]
static SLEEP_CAPTURE: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// `ThreadState::sleep_nr` when the sleep's cause was not noted (a traced
/// call accounts for its own sleeps; no registers).
const NOT_NOTED: u64 = u64::MAX;

/// `-ENOSYS` as the saved `ax` holds it during a syscall.
const ENOSYS_IN_AX: u64 = -38i64 as u64;

/// A traced thread goes to sleep (in its own context, at `now`;
/// `uninterruptible`: in D state). Notes the untraced syscall or the page
/// fault it sleeps in; inside a loop iteration, returns whether its stack
/// should be streamed (within the budget of `tracer_common::sleep_capture`),
/// to be paired with the [`SleepEnd`] if the sleep turns out long: then
/// [`capture_sleep`] does it.
#[inline(always)]
pub fn sleep_begins(state: &mut ThreadState, now: u64, uninterruptible: bool) -> bool {
    state.sleep_nr = NOT_NOTED;
    state.sleep_captured_ns = 0;
    if state.syscall_start_ns != 0 {
        return false;
    }
    let Some(regs) = current_pt_regs() else {
        return false;
    };
    // In a syscall, `ax` holds -ENOSYS until it returns. Outside one, a
    // thread sleeps in an exception, a page fault (which keeps the user's
    // `ax`, and its error code in `orig_ax`), or stopped by a signal (a
    // state that is no service's).
    let (nr, arg0) = if pt_reg(regs, PT_REGS_AX) == ENOSYS_IN_AX {
        (pt_reg(regs, PT_REGS_ORIG_AX), first_arg(regs))
    } else {
        (u64::from(PAGE_FAULT_NR), 0)
    };
    if nr > u64::from(PAGE_FAULT_NR) {
        return false;
    }
    state.sleep_nr = nr;
    state.sleep_arg0 = arg0;
    if state.iter_start_ns == 0 || !state.take_sleep_capture(now, uninterruptible) {
        return false;
    }
    state.sleep_captured_ns = now;
    true
}

/// Streams the stack of the sleep [`sleep_begins`] chose, from a program of
/// its own: inlined into `sched_switch`, the stack copy and Python walk made
/// that program take 140 ms to verify, most of the attach time.
#[inline(always)]
pub fn capture_sleep(ctx: &RawTracePointContext) {
    // SAFETY: a tail call does not return when it succeeds; when it fails
    // (no program in the slot) the capture is lost and the sleep's end finds
    // no beginning in userspace.
    unsafe { SLEEP_CAPTURE.tail_call(ctx, 0) };
}

/// Only run by tail call from `sched_switch`, still in the context of the
/// thread going to sleep.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sleep_capture(_ctx: RawTracePointContext) -> i32 {
    if let Some((tgid, tid)) = current_traced()
        && let Some(state) = existing_thread_state(tid)
        && let Some(regs) = current_pt_regs()
    {
        let uninterruptible = if state.offcpu_state == OFFCPU_UNINTERRUPTIBLE {
            SYSCALL_UNINTERRUPTIBLE
        } else {
            0
        };
        let call = Call {
            nr: state.sleep_nr as u32,
            flags: SYSCALL_IN_ITERATION | uninterruptible,
            ret: 0,
            start: state.sleep_captured_ns,
            duration: 0,
            blocked: 0,
            // Futex waits are traced syscalls, never sleeps found here.
            gil_holder: 0,
        };
        emit(
            kind::SLEEP_BEGIN,
            regs,
            tgid,
            tid,
            &call,
            call.start,
            Detail::Full,
        );
    }
    0
}

/// The thread came back from `off` unreported (found running later, in its
/// own context): if it slept outside any traced call, the iteration's
/// longest call tells the sleep's cause, and userspace ends a streamed
/// sleep by the stall's summary (streaming the end from the syscall
/// programs made them too large for 5.10's verifier).
#[cfg(not(feature = "bounded-loops"))]
#[inline(always)]
pub fn sleep_ended_unseen(state: &mut ThreadState, off: Option<OffCpu>) {
    let nr = state.sleep_nr;
    if let Some(off) = off
        && state.syscall_start_ns == 0
        && nr != NOT_NOTED
        && off.asleep_ns > 0
    {
        state.sleep_ended_unseen(nr, state.sleep_arg0, off.asleep_ns, state.sleep_captured_ns);
    }
}

/// The bounded-loops object leaves it out: these branches in every
/// syscall program made 5.10's verifier give up. Such a stall keeps only
/// the kernel's summary of its longest call.
#[cfg(feature = "bounded-loops")]
#[inline(always)]
pub fn sleep_ended_unseen(_: &mut ThreadState, _: Option<OffCpu>) {}

/// The thread is back after sleeping `asleep` ns outside any traced call
/// (in another task's context, at `now`).
#[inline(always)]
pub fn sleep_ends(state: &mut ThreadState, tgid: u32, tid: u32, asleep: u64, now: u64) {
    let nr = state.sleep_nr;
    if nr == NOT_NOTED {
        add_short_offcpu(MAX_SYSCALL_NR, asleep);
        return;
    }
    let arg0 = state.sleep_arg0;
    state.syscall_returned(nr, asleep, || arg0);
    let offcpu_min = OFFCPU_MIN_NS.load();
    let began = state.sleep_captured_ns;
    let streamed = began != 0 && (asleep >= THRESHOLD_NS.load() || asleep >= offcpu_min);
    // As for traced calls: what the off-CPU profile does not get with a
    // stack is summed by syscall (page faults in the last slot).
    if asleep < offcpu_min || !streamed {
        add_short_offcpu(nr as u32, asleep);
    }
    if !streamed {
        return;
    }
    send(SleepEnd {
        header: header(kind::SLEEP_END, tgid, tid, now),
        start_ns: began,
        asleep_ns: asleep,
    });
}
