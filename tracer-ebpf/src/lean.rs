//! Lean mode (the default; `--all-syscalls` turns it off): instead of every
//! syscall (the raw `sys_enter` / `sys_exit` tracepoints, a program call on
//! each syscall of every process), only the calls an event loop idles or
//! parks in go through their own tracepoints. The rest of the machine then
//! pays only the kernel's slower syscall entry. A blocking call inside a loop
//! iteration is found where the scheduler switches the thread out
//! (`sleeps.rs`).

use aya_ebpf::{EbpfContext, macros::tracepoint, programs::TracePointContext};

use crate::{
    stack::syscall_pt_regs,
    syscalls::{on_enter, on_exit},
    target::current_traced,
};

// Offsets in the records of the `syscalls:sys_{enter,exit}_*` tracepoints:
// the number, then each argument in 8 bytes; or the return value. poll's
// record, the shortest here, ends after three arguments (the kernel refuses
// to attach a program that reads past a record).
const TP_SYSCALL_NR: usize = 8;
const TP_FIRST_ARG: usize = 16;
const TP_RET: usize = 16;

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
