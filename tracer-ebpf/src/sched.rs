//! Context switches and wake-ups of traced threads: how long each was on
//! CPU, asleep, and runnable but waiting for a CPU. The loop iteration and
//! the syscall in progress get these times; short sleeps outside syscalls
//! and the run-queue latency are summed here.

use aya_ebpf::{
    Global,
    macros::{map, raw_tracepoint},
    maps::PerCpuArray,
    programs::RawTracePointContext,
};
use tracer_common::{
    LatencyHist, MAX_SYSCALL_NR, OFFCPU_RUNNABLE, OFFCPU_SLEEPING, OFFCPU_UNINTERRUPTIBLE,
    OffCpuTotals, ThreadState, hist,
};

use crate::{
    helpers::now_ns,
    kernel,
    maps::{existing_thread_state, thread_state},
    sleeps::{capture_sleep, sleep_begins, sleep_ended_unseen, sleep_ends},
    target::{current_traced, is_traced},
};

/// Off-CPU time below the streaming minimum, by syscall number; the last
/// slot (`PAGE_FAULT_NR`) is time asleep in page faults, or unexplained.
#[map]
pub static OFFCPU_SHORT: PerCpuArray<OffCpuTotals> =
    PerCpuArray::with_max_entries(MAX_SYSCALL_NR + 1, 0);

/// How long traced threads waited for a CPU once runnable.
#[map]
static RUNQUEUE: PerCpuArray<LatencyHist> = PerCpuArray::with_max_entries(1, 0);

const TASK_UNINTERRUPTIBLE: u64 = 2;

/// 1 where `sched_switch` passes the previous task's state (5.18+); before,
/// the program must not even read that argument (the kernel refuses to
/// attach it), and reads the task's state field instead. Set at load; the
/// verifier knows the value and checks only the branch taken.
#[unsafe(no_mangle)]
static SWITCH_STATE_ARG: Global<u32> = Global::new(1);

/// `sched_switch(bool preempt, task_struct *prev, task_struct *next,
/// unsigned int prev_state)`; the current task is `prev`.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> i32 {
    // Every switch on the machine comes here: the untraced ones leave
    // before reading the clock.
    let next: *const u8 = ctx.arg(2);
    let prev_traced = current_traced();
    let next_traced = traced_task(next);
    if prev_traced.is_none() && next_traced.is_none() {
        return 0;
    }
    let now = now_ns();
    let preempt: u64 = ctx.arg(0);
    let prev: u64 = ctx.arg(1);
    let prev_state: u64 = if SWITCH_STATE_ARG.load() != 0 {
        ctx.arg(3)
    } else {
        kernel::read::<u32>(prev, kernel::offset!(task_state)).map_or(0, u64::from)
    };
    let off_state = if preempt != 0 || prev_state & 0xff == 0 {
        OFFCPU_RUNNABLE
    } else if prev_state & TASK_UNINTERRUPTIBLE != 0 {
        OFFCPU_UNINTERRUPTIBLE
    } else {
        OFFCPU_SLEEPING
    };
    let capture = prev_traced.is_some_and(|(_, tid)| switch_out(now, tid, prev, off_state));
    if let Some((tgid, tid)) = next_traced {
        switch_in(now, tgid, tid, next);
    }
    if capture {
        capture_sleep(&ctx);
    }
    0
}

/// `sched_wakeup(task_struct *p)`: from now on `p` waits for a CPU.
#[raw_tracepoint(tracepoint = "sched_wakeup")]
pub fn sched_wakeup(ctx: RawTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    // The thread's own events do not run while it sleeps.
    if let Some((_, tid)) = traced_task(task)
        && let Some(state) = existing_thread_state(tid)
        && state.offcpu_since_ns != 0
    {
        state.wakeup_ns = now_ns();
    }
    0
}

/// (tgid, tid) of a traced task given by pointer (not the current task).
fn traced_task(task: *const u8) -> Option<(u32, u32)> {
    // `pid` and `tgid` are neighbours in task_struct.
    let [tid, tgid] = kernel::read::<[u32; 2]>(task as u64, kernel::offset!(task_pid))?;
    is_traced(tgid).then_some((tgid, tid))
}

/// Traced thread `tid`, task `prev` (the current one), goes off CPU.
/// Returns whether the sleep now beginning should have its stack captured.
fn switch_out(now: u64, tid: u32, prev: u64, off_state: u64) -> bool {
    // Never created here: an exiting thread switches out one last time
    // after its state was freed.
    let Some(state) = existing_thread_state(tid) else {
        return false;
    };
    running(state, now);
    // The scheduler has just brought its count of the task's CPU time up
    // to date: the stint is exact even if the switch in went unreported.
    let stint = state.unaccounted_oncpu_ns(kernel::runtime_ns(prev));
    state.oncpu_total_ns += stint;
    state.iteration_switched_out(now, stint);
    let capture = off_state != OFFCPU_RUNNABLE
        && sleep_begins(state, now, off_state == OFFCPU_UNINTERRUPTIBLE);
    state.offcpu_since_ns = now;
    state.offcpu_state = off_state;
    state.wakeup_ns = 0;
    capture
}

/// Traced thread `tid` of process `tgid`, task `next`, goes on CPU.
fn switch_in(now: u64, tgid: u32, tid: u32, next: *const u8) {
    // An exiting thread's state may have been freed already and must not
    // be created again; while it still exists it must see the switch, or
    // the exit would count the thread's last stint twice.
    let state = if kernel::exiting(next as u64) {
        existing_thread_state(tid)
    } else {
        thread_state(tid, || next as u64)
    };
    if let Some(state) = state {
        back_on_cpu(state, tgid, tid, now);
    }
}

/// The current thread runs (it makes a syscall, it switches out): a switch
/// back in that went unreported is accounted now (see
/// `tracer_common::switches`): the thread's own totals get it, and the
/// iteration the cause of the sleep it ended.
#[inline(always)]
pub fn running(state: &mut ThreadState, now: u64) {
    let runtime = || kernel::runtime_ns(kernel::current_task());
    if let Some(back) = state.unreported_switch_in(now, runtime) {
        let off = state.switched_in(back);
        sleep_ended_unseen(state, off);
    }
}

/// The thread is on CPU again since `now`: its time off CPU goes to the
/// iteration, the syscall in progress or the sleep it was in, and the run
/// queue.
fn back_on_cpu(state: &mut ThreadState, tgid: u32, tid: u32, now: u64) {
    let Some(off) = state.switched_in(now) else {
        return;
    };
    if state.syscall_start_ns == 0 && off.asleep_ns > 0 {
        sleep_ends(state, tgid, tid, off.asleep_ns, now);
    }
    add_runqueue(off.waited_ns);
}

/// Counts an off-CPU span too short to stream, under syscall `index`.
#[inline(always)]
pub fn add_short_offcpu(index: u32, ns: u64) {
    if let Some(totals) = OFFCPU_SHORT.get_ptr_mut(index) {
        // SAFETY: per-CPU value: no other CPU writes it.
        unsafe {
            (*totals).count += 1;
            (*totals).total_ns += ns;
        }
    }
}

fn add_runqueue(ns: u64) {
    let Some(latency) = RUNQUEUE.get_ptr_mut(0) else {
        return;
    };
    let bucket = hist::bucket(ns) & (hist::HIST_BUCKETS - 1);
    // SAFETY: per-CPU value: no other CPU writes it.
    unsafe {
        (*latency).count += 1;
        (*latency).total_ns += ns;
        if ns > (*latency).max_ns {
            (*latency).max_ns = ns;
        }
        (*latency).hist[bucket] += 1;
    }
}
