//! On-CPU samples of traced threads from perf events: the CPU profile
//! (`--rate` Hz), and fast samples of loop threads whose iteration is running
//! long, which name the hot code of a CPU-bound stall.

use core::ptr::addr_of_mut;

use aya_ebpf::{
    Global,
    helpers::bpf_get_current_comm,
    macros::perf_event,
    programs::{PerfEventContext, tracing::StackIdContext},
};
use tracer_common::{CpuSample, SAMPLE_PROFILE, SAMPLE_STALL, UserRegs, counter, kind};

use crate::{
    counters::bump,
    helpers::now_ns,
    kernel,
    maps::{EVENTS, KERNEL_STACKS, existing_thread_state, header, thread_state},
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
    emit(&ctx, tgid, tid, SAMPLE_PROFILE);
    0
}

#[perf_event]
pub fn stall_sample(ctx: PerfEventContext) -> u32 {
    let Some((tgid, tid)) = current_traced() else {
        return 0;
    };
    let Some(state) = existing_thread_state(tid) else {
        return 0;
    };
    let start = state.iter_start_ns;
    if start != 0 && now_ns().saturating_sub(start) >= STALL_SAMPLE_AFTER_NS.load() {
        emit(&ctx, tgid, tid, SAMPLE_STALL);
    }
    0
}

fn emit(ctx: &PerfEventContext, tgid: u32, tid: u32, reason: u32) {
    let Some(mut entry) = EVENTS.reserve::<CpuSample>(0) else {
        bump(counter::DROP_RINGBUF_FULL);
        return;
    };
    // Direct loads from the context: the verifier rewrites them to go
    // through the kernel's pointer to the sampled registers (a probe read
    // of the context would read that pointer instead).
    // SAFETY: `ctx.ctx` is the program's context.
    let sampled = unsafe { &(*ctx.ctx).regs };
    let in_user = sampled.cs & 3 == 3;
    let user_regs = if in_user {
        UserRegs {
            ip: sampled.rip,
            sp: sampled.rsp,
            bp: sampled.rbp,
        }
    } else {
        current_user_regs().unwrap_or_default()
    };
    let kernel_stack = if in_user {
        -1
    } else {
        // Userspace reads a stack as soon as its event arrives, so a bucket
        // may be reused for a newer stack (no -EEXIST misses).
        ctx.get_stackid(&KERNEL_STACKS, BPF_F_REUSE_STACKID)
            .unwrap_or_else(|_| {
                bump(counter::DROP_KERNEL_STACK);
                -1
            })
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` is a ring buffer reservation of the right size; every field
    // is written before submit.
    unsafe {
        (*e).header = header(kind::CPU_SAMPLE, tgid, tid, now_ns());
        (*e).reason = reason;
        (*e)._pad = 0;
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        capture_user(user_regs, tgid, tid, addr_of_mut!((*e).stack));
        (*e).stack.kernel_stack_id = kernel_stack;
    }
    entry.submit(0);
    bump(counter::EVENTS_SENT);
}
