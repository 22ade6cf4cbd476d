//! On-CPU samples of traced threads: the CPU profile from perf events
//! (`--rate` Hz), and samples of loop threads whose iteration is running
//! long, which name the hot code of a CPU-bound stall.

use core::ptr::addr_of_mut;

use aya_ebpf::{
    Global,
    helpers::bpf_get_current_comm,
    macros::{perf_event, raw_tracepoint},
    programs::{PerfEventContext, RawTracePointContext, tracing::StackIdContext},
};
use tracer_common::{CpuSample, SAMPLE_PROFILE, SAMPLE_STALL, UserRegs, counter, kind};

use crate::{
    counters::bump,
    helpers::now_ns,
    kernel,
    maps::{EVENTS, KERNEL_STACKS, batched, existing_thread_state, header, thread_state},
    stack::{capture_user, current_user_regs},
    target::current_traced,
};

const BPF_F_REUSE_STACKID: u64 = 1 << 10;

/// A loop iteration is sampled once it has run this long (half the threshold).
#[unsafe(no_mangle)]
static STALL_SAMPLE_AFTER_NS: Global<u64> = Global::new(5_000_000);

#[perf_event]
pub fn profile_sample(ctx: PerfEventContext) -> u32 {
    let Some((tgid, tid)) = current_traced() else {
        return 0;
    };
    // A thread running since before tracing began has no switch-in time
    // yet: it has been on CPU at least since now. (An exiting thread's
    // state is gone and must stay gone.)
    if !kernel::current_exiting()
        && let Some(state) = thread_state(tid, kernel::current_task)
        && state.oncpu_since_ns == 0
        && state.offcpu_since_ns == 0
    {
        state.oncpu_since_ns = now_ns();
    }
    // Direct loads from the context: the verifier rewrites them to go
    // through the kernel's pointer to the sampled registers (a probe read
    // of the context would read that pointer instead).
    // SAFETY: `ctx.ctx` is the program's context.
    let sampled = unsafe { &(*ctx.ctx).regs };
    let (user, kernel_stack) = if sampled.cs & 3 == 3 {
        let user = UserRegs {
            ip: sampled.rip,
            sp: sampled.rsp,
            bp: sampled.rbp,
        };
        (user, -1)
    } else {
        // Userspace reads a stack as soon as its event arrives, so a bucket
        // may be reused for a newer stack (no -EEXIST misses).
        let id = ctx
            .get_stackid(&KERNEL_STACKS, BPF_F_REUSE_STACKID)
            .unwrap_or_else(|_| {
                bump(counter::DROP_KERNEL_STACK);
                -1
            });
        (current_user_regs().unwrap_or_default(), id)
    };
    send(tgid, tid, SAMPLE_PROFILE, user, kernel_stack);
    0
}

/// `hrtimer_expire_entry`: a timer fires on this CPU, in an interrupt of
/// whatever runs there; the scheduler tick of a busy CPU is one (HZ, 250
/// here). A perf event of our own at 1 kHz did the same job and cost every
/// CPU of this VM 1.5-4 % in interrupts (20-40 µs each); the tick is there
/// anyway. The samples carry the user stack only: the kernel's would be
/// the interrupt's.
#[raw_tracepoint(tracepoint = "hrtimer_expire_entry")]
pub fn stall_sample(_ctx: RawTracePointContext) -> i32 {
    if let Some((tgid, tid)) = current_traced()
        && let Some(state) = existing_thread_state(tid)
        && state.take_stall_sample(now_ns(), STALL_SAMPLE_AFTER_NS.load())
    {
        // The registers saved when the thread last entered the kernel: at
        // this interrupt if it ran user code, else at its syscall.
        let user = current_user_regs().unwrap_or_default();
        send(tgid, tid, SAMPLE_STALL, user, -1);
    }
    0
}

fn send(tgid: u32, tid: u32, reason: u32, user: UserRegs, kernel_stack: i64) {
    let Some(mut entry) = EVENTS.reserve::<CpuSample>(0) else {
        bump(counter::DROP_RINGBUF_FULL);
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` is a ring buffer reservation of the right size; every field
    // is written before submit.
    unsafe {
        (*e).header = header(kind::CPU_SAMPLE, tgid, tid, now_ns());
        (*e).reason = reason;
        (*e)._pad = 0;
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        capture_user(user, tgid, tid, true, addr_of_mut!((*e).stack));
        (*e).stack.kernel_stack_id = kernel_stack;
    }
    entry.submit(batched());
    bump(counter::EVENTS_SENT);
}
