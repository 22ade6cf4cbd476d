//! Context switches of traced threads: how long each was on CPU, waited to
//! run (preempted, still runnable) or slept. The loop iteration and the
//! syscall in progress get these times.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

use crate::{
    helpers::now_ns,
    kernel,
    maps::{THREADS, TRACED},
    target::current_traced,
};

/// `sched_switch(bool preempt, task_struct *prev, task_struct *next,
/// unsigned int prev_state)`; the current task is `prev`.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> i32 {
    let now = now_ns();
    let preempt: u64 = ctx.arg(0);
    let next: *const u8 = ctx.arg(2);
    let prev_state: u64 = ctx.arg(3);
    switch_out(now, preempt != 0 || prev_state & 0xff == 0);
    switch_in(now, next);
    0
}

fn switch_out(now: u64, runnable: bool) {
    let Some((_, tid)) = current_traced() else {
        return;
    };
    let Some(state) = THREADS.get_ptr_mut(tid) else {
        return;
    };
    // SAFETY: the map value is only written by the thread's own events.
    let state = unsafe { &mut *state };
    if state.iter_start_ns != 0 {
        let from = state.oncpu_since_ns.max(state.iter_start_ns);
        state.iter_oncpu_ns += now.saturating_sub(from);
    }
    state.offcpu_since_ns = now;
    state.offcpu_runnable = runnable as u64;
}

fn switch_in(now: u64, next: *const u8) {
    // `pid` and `tgid` are neighbours in task_struct.
    let Some([tid, tgid]) = kernel::read::<[u32; 2]>(next as u64, kernel::offsets().task_pid)
    else {
        return;
    };
    // SAFETY: the value is only tested for presence.
    if unsafe { TRACED.get(tgid) }.is_none() {
        return;
    }
    let Some(state) = THREADS.get_ptr_mut(tid) else {
        return;
    };
    // SAFETY: as in switch_out.
    let state = unsafe { &mut *state };
    if state.offcpu_since_ns != 0 {
        let off = now.saturating_sub(state.offcpu_since_ns);
        let runnable = state.offcpu_runnable != 0;
        if state.iter_start_ns != 0 {
            if runnable {
                state.iter_runqueue_ns += off;
            } else {
                state.iter_blocked_ns += off;
            }
        }
        if !runnable && state.syscall_start_ns != 0 {
            state.syscall_blocked_ns += off;
        }
    }
    state.offcpu_since_ns = 0;
    state.oncpu_since_ns = now;
}
