//! Capture of what userspace needs to unwind a user stack without frame
//! pointers: the user registers and a copy of the top of the user stack.

use core::{ffi::c_void, ptr::addr_of_mut};

use aya_ebpf::helpers::{bpf_probe_read_kernel, generated::bpf_probe_read_user};
use tracer_common::{PY_STATUS_NONE, STACK_COPY_BYTES, StackCapture, UserRegs};

use crate::{kernel, maps::existing_thread_state, python};

// Offsets in the x86-64 `struct pt_regs` (stable ABI: it is the uapi layout).
const PT_REGS_BP: usize = 32;
pub const PT_REGS_R10: usize = 56;
/// The syscall's return value once it returns (-ENOSYS until then).
pub const PT_REGS_AX: usize = 80;
pub const PT_REGS_DX: usize = 96;
pub const PT_REGS_SI: usize = 104;
pub const PT_REGS_DI: usize = 112;
/// The syscall number in progress (negative: not in a syscall).
pub const PT_REGS_ORIG_AX: usize = 120;
const PT_REGS_IP: usize = 128;
const PT_REGS_CS: usize = 136;
pub const PT_REGS_SP: usize = 152;
/// sizeof(struct pt_regs).
const PT_REGS_SIZE: u64 = 168;
/// The user code segment selector: the registers are from user mode.
const USER_CS: u64 = 0x33;
/// x86-64 kernel stack size (THREAD_SIZE, 16 KiB without KASAN).
const THREAD_SIZE: u64 = 16384;
const PAGE_SIZE: u64 = 4096;

/// Reads one saved register from a kernel `struct pt_regs *`.
#[inline(always)]
pub fn pt_reg(regs: *const u8, offset: usize) -> u64 {
    // SAFETY: bpf_probe_read_kernel checks the address; a failed read gives 0.
    unsafe { bpf_probe_read_kernel(regs.add(offset).cast::<u64>()) }.unwrap_or(0)
}

/// The first syscall argument, from the saved user registers.
#[inline(always)]
pub fn first_arg(regs: *const u8) -> u64 {
    pt_reg(regs, PT_REGS_DI)
}

/// The registers an unwinder starts from, out of a `struct pt_regs *`.
#[inline(always)]
pub fn user_regs_at(regs: *const u8) -> UserRegs {
    UserRegs {
        ip: pt_reg(regs, PT_REGS_IP),
        sp: pt_reg(regs, PT_REGS_SP),
        bp: pt_reg(regs, PT_REGS_BP),
    }
}

/// The user stack pointer, from a `struct pt_regs *`.
#[inline(always)]
pub fn user_sp(regs: *const u8) -> u64 {
    pt_reg(regs, PT_REGS_SP)
}

/// The current task's saved user registers (`task_pt_regs(current)`, a
/// `struct pt_regs *`): at the top of its kernel stack. In a syscall they
/// are the caller's, so unlike [`current_pt_regs`] this does not check.
#[inline(always)]
pub fn syscall_pt_regs() -> Option<*const u8> {
    let task = kernel::current_task();
    let stack = kernel::read::<u64>(task, kernel::offset!(task_stack))?;
    Some((stack + THREAD_SIZE - PT_REGS_SIZE) as *const u8)
}

/// As [`syscall_pt_regs`], in any context: None if the registers do not
/// look like user mode.
#[inline(always)]
pub fn current_pt_regs() -> Option<*const u8> {
    let regs = syscall_pt_regs()?;
    (pt_reg(regs, PT_REGS_CS) == USER_CS).then_some(regs)
}

/// The registers an unwinder starts from, of the current task.
#[inline(always)]
pub fn current_user_regs() -> Option<UserRegs> {
    current_pt_regs().map(user_regs_at)
}

/// Fills `out` with the current thread's user stack: the registers, a copy
/// of the stack from `user.sp` up (none if `sp` is 0: not known), and, if
/// `python`, its Python frames (the walk is most of what the verifier
/// checks in a program that captures stacks: ~18k instructions, ~30 ms of
/// attach time). The kernel stack is left empty for the caller.
///
/// # Safety
/// `out` must point to writable memory of a `StackCapture` (a ring buffer
/// reservation).
#[inline(always)]
pub unsafe fn capture_user(
    user: UserRegs,
    tgid: u32,
    tid: u32,
    python: bool,
    out: *mut StackCapture,
) {
    // SAFETY: the caller guarantees `out` is valid for writes.
    unsafe {
        (*out).regs = user;
        (*out).kernel_stack_id = -1;
        (*out)._pad = 0;
        if python {
            // The stack copy below overwrites the walk's scratch space.
            let scratch = addr_of_mut!((*out).user).cast();
            python::read_stack(tgid, tid, addr_of_mut!((*out).py), scratch);
        } else {
            (*out).py.len = 0;
            (*out).py.status = PY_STATUS_NONE;
        }
        (*out).user_len = if user.sp == 0 {
            0
        } else {
            copy_user_stack(user.sp, tid, addr_of_mut!((*out).user).cast::<u8>())
        };
    }
}

/// Copies as much as possible of `[sp, sp + STACK_COPY_BYTES)`; returns
/// the bytes copied. A read fails whole if any byte is unreadable, and a
/// thread often has only a few KiB above `sp`, so the copy goes up to where
/// the thread's stack ends: known from an earlier capture, or found by
/// probing the pages above `sp` (a failed read costs a fault and a clear of
/// the whole destination: copying in halving chunks took 4-5 µs a capture).
#[inline(always)]
unsafe fn copy_user_stack(sp: u64, tid: u32, dst: *mut u8) -> u32 {
    let state = existing_thread_state(tid);
    let known_end = state.as_ref().map_or(0, |state| state.user_stack_end);
    // SAFETY (all reads): `dst` holds STACK_COPY_BYTES, and no read is
    // longer.
    if let Some(len) = len_to_end(known_end, sp)
        && unsafe { read_user(dst, len, sp) }
    {
        return len;
    }
    if known_end == 0 && unsafe { read_user(dst, STACK_COPY_BYTES as u32, sp) } {
        return STACK_COPY_BYTES as u32;
    }
    let Some(end) = readable_end(sp) else {
        return 0;
    };
    if let Some(state) = state {
        state.user_stack_end = end;
    }
    match len_to_end(end, sp) {
        Some(len) if unsafe { read_user(dst, len, sp) } => len,
        _ => 0,
    }
}

/// The first unreadable page boundary within a copy's reach above `sp`,
/// found by reading one byte of each page; None if every page reads (the
/// stack goes on past the copy) or none does.
#[inline(always)]
fn readable_end(sp: u64) -> Option<u64> {
    let first_page = sp & !(PAGE_SIZE - 1);
    let mut byte = 0u8;
    // SAFETY: `byte` is writable for the one byte read.
    if !unsafe { read_user(&raw mut byte, 1, sp) } {
        return None;
    }
    for page in 1..=STACK_COPY_BYTES as u64 / PAGE_SIZE {
        let start = first_page + page * PAGE_SIZE;
        // SAFETY: as above.
        if !unsafe { read_user(&raw mut byte, 1, start) } {
            return Some(start);
        }
    }
    None
}

/// Bytes from `sp` to the stack end `end` (0: unknown), at most a copy's.
#[inline(always)]
fn len_to_end(end: u64, sp: u64) -> Option<u32> {
    if end <= sp {
        return None;
    }
    Some((end - sp).min(STACK_COPY_BYTES as u64) as u32)
}

/// Reads `len` bytes of user memory at `src` into `dst`; whether it could.
///
/// # Safety
/// `dst` must be writable for `len` bytes.
#[inline(always)]
unsafe fn read_user(dst: *mut u8, len: u32, src: u64) -> bool {
    // SAFETY: forwarded from the caller; the helper checks the source.
    unsafe { bpf_probe_read_user(dst.cast::<c_void>(), len, src as *const c_void) == 0 }
}
