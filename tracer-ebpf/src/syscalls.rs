//! Every syscall of the target: per-syscall statistics aggregated here, the
//! slow ones (at or above the threshold) streamed with their stack, and the
//! poll-family waits handed to the event-loop tracking. In lean mode only
//! the poll-family and futex calls arrive here (from `lean.rs`).

use core::ptr::addr_of_mut;

use aya_ebpf::{
    Global, helpers::bpf_get_current_comm, macros::raw_tracepoint, programs::RawTracePointContext,
};
use tracer_common::{
    FdInfo, MAX_SYSCALL_NR, SYSCALL_IN_ITERATION, SlowSyscall, ThreadState, counter, hist, kind,
};

use crate::{
    counters::bump,
    fds, gil,
    helpers::now_ns,
    kernel, loops,
    maps::{EVENTS, SYSCALL_STATS, existing_thread_state, header, thread_state},
    sched::{self, add_short_offcpu},
    stack::{
        PT_REGS_DI, PT_REGS_DX, PT_REGS_SI, capture_user, first_arg, pt_reg, user_regs_at, user_sp,
    },
    target::current_traced,
};

/// Syscalls at least this long are streamed; overridden at load.
#[unsafe(no_mangle)]
pub static THRESHOLD_NS: Global<u64> = Global::new(10_000_000);

/// Syscalls that slept at least this long are streamed for the off-CPU
/// profile; shorter sleeps are summed in OFFCPU_SHORT.
#[unsafe(no_mangle)]
pub static OFFCPU_MIN_NS: Global<u64> = Global::new(1_000_000);

const SYS_EXIT: u64 = 60;
const SYS_EXIT_GROUP: u64 = 231;
const SYS_FUTEX: u64 = 202;

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    if let Some((tgid, tid)) = current_traced() {
        let regs: *const u8 = ctx.arg(0);
        let args = || [PT_REGS_DI, PT_REGS_SI, PT_REGS_DX].map(|reg| pt_reg(regs, reg));
        on_enter(tgid, tid, ctx.arg(1), regs, args);
    }
    0
}

/// Syscall `nr` of a traced thread begins; `regs` are its saved user
/// registers (`struct pt_regs *`), `args` reads its first three arguments
/// (asked only of the calls an event loop may wait in).
#[inline(always)]
pub fn on_enter(tgid: u32, tid: u32, nr: u64, regs: *const u8, args: impl FnOnce() -> [u64; 3]) {
    // These never return, so they are counted on the way in.
    if nr == SYS_EXIT || nr == SYS_EXIT_GROUP {
        account(nr, 0, 0);
        return;
    }
    let now = now_ns();
    let (wait_key, futex_key) = if loops::may_wait(nr) {
        let args = args();
        (
            loops::wait_key(nr, &args, regs),
            loops::futex_wait_key(nr, &args),
        )
    } else {
        (None, None)
    };
    let Some(state) = thread_state(tid, kernel::current_task) else {
        bump(counter::DROP_THREAD_MAP_FULL);
        return;
    };
    sched::running(state, now);
    state.syscall_start_ns = now;
    state.syscall_nr = nr;
    state.syscall_blocked_ns = 0;
    state.syscall_flags = 0;
    state.syscall_gil_holder = 0;
    if let Some(key) = wait_key {
        let sp = user_sp(regs);
        loops::wait_enter(state, key, sp, tgid, tid, now, THRESHOLD_NS.load());
    } else if let Some(futex) = futex_key {
        futex_wait_enter(state, regs, futex, tgid, tid, now);
    }
}

/// A futex wait begins: idle if it is the thread's known park; else,
/// while the park is unknown, its stack goes to userspace to tell.
#[inline(always)]
fn futex_wait_enter(
    state: &mut ThreadState,
    regs: *const u8,
    futex: u64,
    tgid: u32,
    tid: u32,
    now: u64,
) {
    state.syscall_futex = futex;
    state.syscall_gil_holder = gil::holder(tgid, futex);
    if loops::is_park(tid, futex) {
        loops::idle_wait_enter(state, tgid, tid, now, THRESHOLD_NS.load());
    } else if loops::wants_park_probe(state, tid) {
        let call = Call {
            nr: SYS_FUTEX as u32,
            flags: 0,
            ret: 0,
            start: now,
            duration: 0,
            blocked: 0,
            gil_holder: 0,
        };
        emit(
            kind::WAIT_PROBE,
            regs,
            tgid,
            tid,
            &call,
            now,
            Detail::NativeStack,
        );
    }
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    if let Some((tgid, tid)) = current_traced() {
        // The second argument of sys_exit is the return value, not the number.
        on_exit(tgid, tid, ctx.arg(1), || Some(ctx.arg(0)));
    }
    0
}

/// A syscall of a traced thread returns `ret`; `regs` finds its saved user
/// registers as in [`on_enter`] (only for a call that may be streamed).
#[inline(always)]
pub fn on_exit(tgid: u32, tid: u32, ret: i64, regs: impl Fn() -> Option<*const u8>) {
    let Some(state) = existing_thread_state(tid) else {
        return;
    };
    let start = state.syscall_start_ns;
    // No entry seen: the syscall was already running when tracing began.
    if start == 0 {
        return;
    }
    let now = now_ns();
    // Before the call ends: time asleep in it is the call's.
    sched::running(state, now);
    state.syscall_start_ns = 0;
    let nr = state.syscall_nr;
    let duration = now.saturating_sub(start);
    account(nr, duration, ret);
    if state.in_idle_wait != 0 {
        // The loop's own wait: idle time, not a blocking call.
        state.exit_idle_wait(now, duration);
        return;
    }
    if nr == SYS_FUTEX && state.iter_start_ns != 0 && loops::is_park(tid, state.syscall_futex) {
        // Recognised as the thread's park while it waited.
        loops::late_park_exit(state, tgid, tid, start, now, THRESHOLD_NS.load());
        return;
    }
    state.syscall_returned(nr, duration, || regs().map_or(0, first_arg));
    let blocked = state.syscall_blocked_ns;
    let offcpu_min = OFFCPU_MIN_NS.load();
    if blocked > 0 && blocked < offcpu_min {
        add_short_offcpu(nr as u32 & (MAX_SYSCALL_NR - 1), blocked);
    }
    // Streamed: blocking calls, and calls that slept long enough for the
    // off-CPU profile.
    if (duration >= THRESHOLD_NS.load() || blocked >= offcpu_min)
        && let Some(regs) = regs()
    {
        let in_iteration = if state.iter_start_ns != 0 {
            SYSCALL_IN_ITERATION
        } else {
            0
        };
        let call = Call {
            nr: nr as u32,
            flags: state.syscall_flags as u32 | in_iteration,
            ret,
            start,
            duration,
            blocked,
            gil_holder: state.syscall_gil_holder,
        };
        emit(
            kind::SLOW_SYSCALL,
            regs,
            tgid,
            tid,
            &call,
            now,
            Detail::Full,
        );
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

pub struct Call {
    pub nr: u32,
    pub flags: u32,
    pub ret: i64,
    pub start: u64,
    pub duration: u64,
    pub blocked: u64,
    pub gil_holder: u64,
}

/// What a streamed syscall event carries besides its registers and native
/// stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The Python frames and what the fd is: what a report shows.
    Full,
    /// Nothing more: a wait probe, read for the runtime functions on its
    /// native stack.
    NativeStack,
}

/// Streams a syscall event of `kind` (slow call, wait probe, sleep) with
/// its stack.
#[inline(always)]
pub fn emit(
    kind: u32,
    regs: *const u8,
    tgid: u32,
    tid: u32,
    call: &Call,
    now: u64,
    detail: Detail,
) {
    let Some(mut entry) = EVENTS.reserve::<SlowSyscall>(0) else {
        bump(counter::DROP_RINGBUF_FULL);
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` is a ring buffer reservation of the right size; every field
    // is written before submit.
    unsafe {
        (*e).header = header(kind, tgid, tid, now);
        (*e).nr = call.nr;
        (*e).flags = call.flags;
        (*e).ret = call.ret;
        (*e).arg0 = first_arg(regs);
        (*e).start_ns = call.start;
        (*e).duration_ns = call.duration;
        (*e).blocked_ns = call.blocked;
        (*e).gil_holder = call.gil_holder;
        let full = detail == Detail::Full;
        if full {
            fds::describe((*e).arg0, addr_of_mut!((*e).fd));
        } else {
            (*e).fd = FdInfo::default();
        }
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        let stack = addr_of_mut!((*e).stack);
        capture_user(user_regs_at(regs), tgid, tid, full, stack);
    }
    entry.submit(0);
    bump(counter::EVENTS_SENT);
}
