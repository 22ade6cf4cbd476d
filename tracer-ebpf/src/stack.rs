//! Capture of what userspace needs to unwind a user stack without frame
//! pointers: the user registers and a copy of the top of the user stack.

use core::{ffi::c_void, ptr::addr_of_mut};

use aya_ebpf::helpers::{bpf_probe_read_kernel, generated::bpf_probe_read_user};
use tracer_common::{STACK_COPY_BYTES, StackCapture, UserRegs};

use crate::{kernel, python};

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
const PT_REGS_SP: usize = 152;
/// sizeof(struct pt_regs).
const PT_REGS_SIZE: u64 = 168;
/// The user code segment selector: the registers are from user mode.
const USER_CS: u64 = 0x33;
/// x86-64 kernel stack size (THREAD_SIZE, 16 KiB without KASAN).
const THREAD_SIZE: u64 = 16384;

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

/// The current task's saved user registers (`task_pt_regs(current)`, a
/// `struct pt_regs *`): at the top of its kernel stack. None if they do not
/// look like user mode.
#[inline(always)]
pub fn current_pt_regs() -> Option<*const u8> {
    let task = kernel::current_task();
    let stack = kernel::read::<u64>(task, kernel::offsets().task_stack)?;
    let regs = (stack + THREAD_SIZE - PT_REGS_SIZE) as *const u8;
    (pt_reg(regs, PT_REGS_CS) == USER_CS).then_some(regs)
}

/// The registers an unwinder starts from, of the current task.
#[inline(always)]
pub fn current_user_regs() -> Option<UserRegs> {
    current_pt_regs().map(user_regs_at)
}

/// Fills `out` with the current thread's user stack: the registers, a copy
/// of the stack from `user.sp` up (none if `sp` is 0: not known), and its
/// Python frames. The kernel stack is left empty for the caller.
///
/// # Safety
/// `out` must point to writable memory of a `StackCapture` (a ring buffer
/// reservation).
#[inline(always)]
pub unsafe fn capture_user(user: UserRegs, tgid: u32, tid: u32, out: *mut StackCapture) {
    // SAFETY: the caller guarantees `out` is valid for writes.
    unsafe {
        (*out).regs = user;
        (*out).kernel_stack_id = -1;
        (*out)._pad = 0;
        python::read_stack(tgid, tid, addr_of_mut!((*out).py));
        (*out).user_len = if user.sp == 0 {
            0
        } else {
            copy_user_stack(user.sp, addr_of_mut!((*out).user).cast::<u8>())
        };
    }
}

/// Copies as much as possible of `[sp, sp + STACK_COPY_BYTES)`. One read fails
/// whole if any byte is unreadable, and a thread often has only a few KiB
/// above `sp`, so the copy goes in halving chunks: each chunk that reads is
/// kept and the next, smaller one starts after it. Returns the bytes copied.
#[inline(always)]
unsafe fn copy_user_stack(sp: u64, dst: *mut u8) -> u32 {
    let mut off = 0;
    // SAFETY (all calls): `dst` holds STACK_COPY_BYTES and each chunk checks
    // that it stays inside.
    unsafe {
        off = chunk::<32768>(sp, dst, off);
        off = chunk::<16384>(sp, dst, off);
        off = chunk::<8192>(sp, dst, off);
        off = chunk::<4096>(sp, dst, off);
        off = chunk::<2048>(sp, dst, off);
        off = chunk::<1024>(sp, dst, off);
        off = chunk::<512>(sp, dst, off);
        off = chunk::<256>(sp, dst, off);
    }
    off
}

#[inline(always)]
unsafe fn chunk<const N: u32>(sp: u64, dst: *mut u8, off: u32) -> u32 {
    if off > STACK_COPY_BYTES as u32 - N {
        return off;
    }
    // SAFETY: off + N <= STACK_COPY_BYTES, so the destination is in bounds;
    // the helper checks the user address.
    let ret = unsafe {
        bpf_probe_read_user(
            dst.add(off as usize).cast::<c_void>(),
            N,
            (sp + off as u64) as *const c_void,
        )
    };
    if ret == 0 { off + N } else { off }
}
