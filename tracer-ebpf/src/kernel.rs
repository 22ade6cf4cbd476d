//! Kernel struct offsets, set by userspace from the kernel's BTF.

use aya_ebpf::{Global, helpers::bpf_probe_read_kernel};
use tracer_common::KernelOffsets;

#[unsafe(no_mangle)]
static KERNEL: Global<KernelOffsets> = Global::new(KernelOffsets {
    task_pid: 0,
    task_stack: 0,
    task_flags: 0,
    task_runtime: 0,
    task_fsbase: 0,
    task_state: 0,
    task_files: 0,
    files_fdt: 0,
    fdtable_max_fds: 0,
    fdtable_fd: 0,
    file_inode: 0,
    file_private_data: 0,
    inode_mode: 0,
    inode_ino: 0,
    socket_sk: 0,
    sock_family: 0,
    sock_daddr: 0,
    sock_rcv_saddr: 0,
    sock_dport: 0,
    sock_num: 0,
    sock_v6_daddr: 0,
    sock_v6_rcv_saddr: 0,
    sock_protocol: 0,
});

/// One field of the kernel offsets, read alone: `KERNEL.load()` copies the
/// whole struct onto the 512-byte BPF stack at each use.
macro_rules! offset {
    ($field:ident) => {
        // SAFETY: `Global` is `repr(transparent)` over its value. The read
        // is volatile, as `Global::load`'s, or the compiler would fold in
        // the initial value the loader overrides.
        unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!((*$crate::kernel::offsets_ptr()).$field))
        }
    };
}
pub(crate) use offset;

/// Where the kernel offsets are; read them with [`offset!`].
#[inline(always)]
pub fn offsets_ptr() -> *const KernelOffsets {
    (&raw const KERNEL).cast()
}

/// Reads a `T` at `base + offset` in kernel memory.
#[inline(always)]
pub fn read<T>(base: u64, offset: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel checks the address.
    unsafe { bpf_probe_read_kernel((base + offset as u64) as *const T) }.ok()
}

/// `PF_EXITING` in `task_struct.flags`.
const PF_EXITING: u32 = 0x4;

/// Whether `task` (a `task_struct *`) is exiting: its state may have been
/// freed already and must not be created again.
#[inline(always)]
pub fn exiting(task: u64) -> bool {
    read::<u32>(task, offset!(task_flags)).is_some_and(|flags| flags & PF_EXITING != 0)
}

/// The scheduler's count of `task`'s CPU time (`se.sum_exec_runtime`): up
/// to date when the task has just gone off CPU; while it runs, as of the
/// last scheduler tick (at most 4 ms behind at HZ=250).
#[inline(always)]
pub fn runtime_ns(task: u64) -> u64 {
    read::<u64>(task, offset!(task_runtime)).unwrap_or(0)
}

/// The current task (`task_struct *`).
#[inline(always)]
pub fn current_task() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { aya_ebpf::helpers::generated::bpf_get_current_task() }
}

/// Whether the current task is exiting.
#[inline(always)]
pub fn current_exiting() -> bool {
    exiting(current_task())
}
