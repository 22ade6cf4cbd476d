//! Every syscall of the target: per-syscall statistics aggregated here, and
//! the slow ones (at or above the threshold) streamed with their stack.

use core::ptr::addr_of_mut;

use aya_ebpf::{
    Global, helpers::bpf_get_current_comm, macros::raw_tracepoint, programs::RawTracePointContext,
};
use tracer_common::{EventHeader, MAX_SYSCALL_NR, SlowSyscall, ThreadState, counter, hist, kind};

use crate::{
    counters::bump,
    helpers::{cpu_id, now_ns},
    maps::{EVENTS, SYSCALL_STATS, THREADS},
    stack::{capture_user, first_arg},
    target::current_traced,
};

/// Syscalls at least this long are streamed; overridden at load.
#[unsafe(no_mangle)]
static THRESHOLD_NS: Global<u64> = Global::new(10_000_000);

const SYS_EXIT: u64 = 60;
const SYS_EXIT_GROUP: u64 = 231;

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    try_sys_enter(&ctx);
    0
}

fn try_sys_enter(ctx: &RawTracePointContext) {
    let Some((_, tid)) = current_traced() else {
        return;
    };
    let nr: u64 = ctx.arg(1);
    // These never return, so they are counted on the way in.
    if nr == SYS_EXIT || nr == SYS_EXIT_GROUP {
        account(nr, 0, 0);
        return;
    }
    let now = now_ns();
    match THREADS.get_ptr_mut(tid) {
        // SAFETY: the pointer comes from the map; only this thread writes it.
        Some(state) => unsafe {
            (*state).syscall_start_ns = now;
            (*state).syscall_nr = nr;
        },
        None => {
            let state = ThreadState {
                syscall_start_ns: now,
                syscall_nr: nr,
            };
            if THREADS.insert(tid, state, 0).is_err() {
                bump(counter::DROP_THREAD_MAP_FULL);
            }
        }
    }
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    try_sys_exit(&ctx);
    0
}

fn try_sys_exit(ctx: &RawTracePointContext) {
    let Some((tgid, tid)) = current_traced() else {
        return;
    };
    let Some(state) = THREADS.get_ptr_mut(tid) else {
        return;
    };
    // SAFETY: the pointer comes from the map; only this thread writes it.
    let (start, nr) = unsafe {
        let start = (*state).syscall_start_ns;
        (*state).syscall_start_ns = 0;
        (start, (*state).syscall_nr)
    };
    // No entry seen: the syscall was already running when tracing began.
    if start == 0 {
        return;
    }
    let now = now_ns();
    let duration = now.saturating_sub(start);
    // The second argument of sys_exit is the return value, not the number.
    let ret: i64 = ctx.arg(1);
    account(nr, duration, ret);
    if duration >= THRESHOLD_NS.load() {
        emit_slow(ctx, tgid, tid, nr as u32, ret, start, duration, now);
    }
}

#[inline(always)]
fn account(nr: u64, duration: u64, ret: i64) {
    if nr >= MAX_SYSCALL_NR as u64 {
        return;
    }
    let Some(stats) = SYSCALL_STATS.get_ptr_mut(nr as u32) else {
        return;
    };
    let bucket = hist::bucket(duration) & (hist::HIST_BUCKETS - 1);
    // SAFETY: per-CPU map value: no other CPU writes it.
    unsafe {
        (*stats).count += 1;
        if is_error(ret) {
            (*stats).errors += 1;
        }
        (*stats).total_ns += duration;
        if duration > (*stats).max_ns {
            (*stats).max_ns = duration;
        }
        (*stats).hist[bucket] += 1;
    }
}

/// Syscalls report errors as -4095..=-1 (other negative values, e.g. from
/// lseek on some files, are results).
#[inline(always)]
fn is_error(ret: i64) -> bool {
    (-4095..0).contains(&ret)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn emit_slow(
    ctx: &RawTracePointContext,
    tgid: u32,
    tid: u32,
    nr: u32,
    ret: i64,
    start: u64,
    duration: u64,
    now: u64,
) {
    let Some(mut entry) = EVENTS.reserve::<SlowSyscall>(0) else {
        bump(counter::DROP_RINGBUF_FULL);
        return;
    };
    let regs: *const u8 = ctx.arg(0);
    let e = entry.as_mut_ptr();
    // SAFETY: `e` is a ring buffer reservation of the right size; every field
    // is written before submit.
    unsafe {
        (*e).header = EventHeader {
            kind: kind::SLOW_SYSCALL,
            cpu: cpu_id(),
            pid: tgid,
            tid,
            ts_ns: now,
        };
        (*e).nr = nr;
        (*e)._pad = 0;
        (*e).ret = ret;
        (*e).arg0 = first_arg(regs);
        (*e).start_ns = start;
        (*e).duration_ns = duration;
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        capture_user(regs, addr_of_mut!((*e).stack));
    }
    entry.submit(0);
    bump(counter::EVENTS_SENT);
}
