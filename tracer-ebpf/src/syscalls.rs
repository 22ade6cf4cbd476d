//! Every syscall of the target: per-syscall statistics aggregated here, the
//! slow ones (at or above the threshold) streamed with their stack, and the
//! poll-family waits handed to the event-loop tracking.

use core::ptr::addr_of_mut;

use aya_ebpf::{
    Global, helpers::bpf_get_current_comm, macros::raw_tracepoint, programs::RawTracePointContext,
};
use tracer_common::{
    EventHeader, MAX_SYSCALL_NR, SlowSyscall, ThreadState, counter, hist, kind, traced,
};

use crate::{
    counters::bump,
    fds,
    helpers::{cpu_id, now_ns},
    loops,
    maps::{EVENTS, SYSCALL_STATS, THREADS},
    stack::{capture_user, first_arg, user_regs_at},
    target::{self, current_traced},
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
    let Some((tgid, tid)) = current_traced() else {
        return;
    };
    let nr: u64 = ctx.arg(1);
    // These never return, so they are counted on the way in.
    if nr == SYS_EXIT || nr == SYS_EXIT_GROUP {
        account(nr, 0, 0);
        return;
    }
    let now = now_ns();
    let regs: *const u8 = ctx.arg(0);
    let wait_key = loops::wait_key(nr, regs);
    let park_key =
        loops::futex_wait_key(nr, regs).filter(|_| target::flags(tgid) & traced::FUTEX_IDLE != 0);
    let Some(state) = thread_state(tid) else {
        bump(counter::DROP_THREAD_MAP_FULL);
        return;
    };
    state.syscall_start_ns = now;
    state.syscall_nr = nr;
    state.syscall_blocked_ns = 0;
    if let Some(key) = wait_key {
        loops::wait_enter(state, key, tgid, tid, now, THRESHOLD_NS.load());
    } else if let Some(key) = park_key {
        loops::park_enter(state, key, tgid, tid, now, THRESHOLD_NS.load());
    }
}

/// The thread's state, created at its first syscall.
fn thread_state(tid: u32) -> Option<&'static mut ThreadState> {
    if THREADS.get_ptr_mut(tid).is_none() {
        THREADS.insert(tid, ThreadState::default(), 0).ok()?;
    }
    // SAFETY: map values live as long as their entry; only this thread's
    // own programs write it.
    THREADS.get_ptr_mut(tid).map(|state| unsafe { &mut *state })
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
    // SAFETY: see thread_state.
    let state = unsafe { &mut *state };
    let start = state.syscall_start_ns;
    // No entry seen: the syscall was already running when tracing began.
    if start == 0 {
        return;
    }
    state.syscall_start_ns = 0;
    let nr = state.syscall_nr;
    let now = now_ns();
    let duration = now.saturating_sub(start);
    // The second argument of sys_exit is the return value, not the number.
    let ret: i64 = ctx.arg(1);
    account(nr, duration, ret);
    if state.in_idle_wait != 0 {
        // The loop's own wait: idle time, not a blocking call.
        loops::idle_wait_exit(state, tid, now, duration);
        return;
    }
    let regs: *const u8 = ctx.arg(0);
    loops::syscall_in_iteration(state, nr, duration, regs);
    if duration >= THRESHOLD_NS.load() {
        let call = Call {
            nr: nr as u32,
            ret,
            start,
            duration,
            blocked: state.syscall_blocked_ns,
        };
        emit_slow(regs, tgid, tid, &call, now);
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

struct Call {
    nr: u32,
    ret: i64,
    start: u64,
    duration: u64,
    blocked: u64,
}

#[inline(always)]
fn emit_slow(regs: *const u8, tgid: u32, tid: u32, call: &Call, now: u64) {
    let Some(mut entry) = EVENTS.reserve::<SlowSyscall>(0) else {
        bump(counter::DROP_RINGBUF_FULL);
        return;
    };
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
        (*e).nr = call.nr;
        (*e)._pad = 0;
        (*e).ret = call.ret;
        (*e).arg0 = first_arg(regs);
        (*e).start_ns = call.start;
        (*e).duration_ns = call.duration;
        (*e).blocked_ns = call.blocked;
        fds::describe((*e).arg0, addr_of_mut!((*e).fd));
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        capture_user(user_regs_at(regs), tgid, tid, addr_of_mut!((*e).stack));
    }
    entry.submit(0);
    bump(counter::EVENTS_SENT);
}
