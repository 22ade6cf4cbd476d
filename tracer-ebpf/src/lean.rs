//! Lean mode (the default; `--all-syscalls` turns it off): instead of every
//! syscall (the raw `sys_enter` / `sys_exit` tracepoints, a program call on
//! each syscall of every process), only the calls an event loop idles or
//! parks in go through their own tracepoints. The rest of the machine then pays only the kernel's slower
//! syscall entry. A blocking call inside a loop iteration is found where the
//! scheduler switches the thread out: its syscall number and first argument
//! are in the saved user registers, and its stack is still the caller's.

use aya_ebpf::{
    EbpfContext, Global,
    macros::{map, raw_tracepoint, tracepoint},
    maps::ProgramArray,
    programs::{RawTracePointContext, TracePointContext},
};
use tracer_common::{
    MAX_SYSCALL_NR, OFFCPU_UNINTERRUPTIBLE, SYSCALL_IN_ITERATION, SYSCALL_UNINTERRUPTIBLE,
    SleepEnd, ThreadState, kind,
};

use crate::{
    maps::{existing_thread_state, header, send},
    sched::add_short_offcpu,
    stack::{PT_REGS_AX, PT_REGS_ORIG_AX, current_pt_regs, first_arg, pt_reg, syscall_pt_regs},
    syscalls::{Call, Detail, OFFCPU_MIN_NS, THRESHOLD_NS, emit, on_enter, on_exit},
    target::current_traced,
};

/// Slot 0: `sleep_capture`, set by userspace.
#[map]
static SLEEP_CAPTURE: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Set at load: lean mode.
#[unsafe(no_mangle)]
static LEAN: Global<u32> = Global::new(0);

/// `ThreadState::sleep_nr` when the thread did not sleep in an untraced
/// syscall (a page fault, a traced call).
const NOT_IN_SYSCALL: u64 = u64::MAX;

/// `-ENOSYS` as the saved `ax` holds it during a syscall.
const ENOSYS_IN_AX: u64 = -38i64 as u64;

// Offsets in the records of the `syscalls:sys_{enter,exit}_*` tracepoints:
// the number, then each argument in 8 bytes; or the return value. poll's
// record, the shortest here, ends after three arguments (the kernel refuses
// to attach a program that reads past a record).
const TP_SYSCALL_NR: usize = 8;
const TP_FIRST_ARG: usize = 16;
const TP_RET: usize = 16;

#[inline(always)]
pub fn lean() -> bool {
    LEAN.load() != 0
}

/// A field of the tracepoint's record, by plain load (no helper call).
#[inline(always)]
fn record_field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: the offsets above are inside every attached tracepoint's
    // record, and aligned; the verifier checks context loads.
    unsafe { ctx.as_ptr().cast::<u8>().add(offset).cast::<T>().read() }
}

/// Attached to `syscalls:sys_enter_*` of the poll family and futex.
#[tracepoint]
pub fn wait_syscall_enter(ctx: TracePointContext) -> u32 {
    if let Some((tgid, tid)) = current_traced()
        && let Some(regs) = syscall_pt_regs()
    {
        let nr = record_field::<i32>(&ctx, TP_SYSCALL_NR);
        let args = || [0, 1, 2].map(|i| record_field::<u64>(&ctx, TP_FIRST_ARG + 8 * i));
        on_enter(tgid, tid, nr as u64, regs, args);
    }
    0
}

/// Attached to `syscalls:sys_exit_*` of the same calls.
#[tracepoint]
pub fn wait_syscall_exit(ctx: TracePointContext) -> u32 {
    if let Some((tgid, tid)) = current_traced() {
        on_exit(tgid, tid, record_field(&ctx, TP_RET), syscall_pt_regs);
    }
    0
}

/// A traced thread goes to sleep (in its own context, at `now`). Notes the
/// untraced syscall it sleeps in; inside a loop iteration, returns whether
/// that call's stack should be streamed (within the budget of
/// `tracer_common::sleep_capture`), to be paired with the [`SleepEnd`] if the
/// sleep turns out long: then [`capture_sleep`] does it.
#[inline(always)]
pub fn sleep_begins(state: &mut ThreadState, now: u64) -> bool {
    state.sleep_nr = NOT_IN_SYSCALL;
    state.sleep_captured_ns = 0;
    // A traced call accounts for its own sleeps.
    if state.syscall_start_ns != 0 {
        return false;
    }
    let Some(regs) = current_pt_regs() else {
        return false;
    };
    // In a syscall, `ax` holds -ENOSYS until it returns; an exception
    // (a page fault) keeps the user's `ax` and its error code in `orig_ax`.
    let nr = pt_reg(regs, PT_REGS_ORIG_AX);
    if pt_reg(regs, PT_REGS_AX) != ENOSYS_IN_AX || nr >= u64::from(MAX_SYSCALL_NR) {
        return false;
    }
    state.sleep_nr = nr;
    state.sleep_arg0 = first_arg(regs);
    if state.iter_start_ns == 0 || !state.take_sleep_capture(now) {
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

/// The thread is back after sleeping `asleep` ns outside any traced call
/// (in another task's context, at `now`).
#[inline(always)]
pub fn sleep_ends(state: &mut ThreadState, tgid: u32, tid: u32, asleep: u64, now: u64) {
    let nr = state.sleep_nr;
    if nr == NOT_IN_SYSCALL {
        add_short_offcpu(MAX_SYSCALL_NR, asleep);
        return;
    }
    let arg0 = state.sleep_arg0;
    state.syscall_returned(nr, asleep, || arg0);
    let offcpu_min = OFFCPU_MIN_NS.load();
    let began = state.sleep_captured_ns;
    let streamed = began != 0 && (asleep >= THRESHOLD_NS.load() || asleep >= offcpu_min);
    // As for traced calls: what the off-CPU profile does not get with a
    // stack is summed by syscall.
    if asleep < offcpu_min || !streamed {
        add_short_offcpu(nr as u32 & (MAX_SYSCALL_NR - 1), asleep);
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
