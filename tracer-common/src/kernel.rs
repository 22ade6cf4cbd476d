//! Kernel struct offsets the probes need (plain BPF, no CO-RE): found by
//! userspace in the kernel's BTF and passed in the `KERNEL` setting.

/// Byte offsets of kernel struct members. [`KernelOffsets::MISSING`] for one
/// the BTF lacks (the probes then skip what needs it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.pid` (`tgid` follows it).
    pub task_pid: u32,
    /// `task_struct.stack`: the kernel stack, user registers at its top.
    pub task_stack: u32,
    /// `task_struct.flags` (`PF_EXITING`).
    pub task_flags: u32,
    /// `task_struct.se.sum_exec_runtime`: the scheduler's count of the
    /// task's CPU time.
    pub task_runtime: u32,
    /// `task_struct.thread.fsbase`: `pthread_self()` of a thread.
    pub task_fsbase: u32,
    /// `task_struct.__state` (`state` before 5.14): read at a switch where
    /// the tracepoint does not pass it (before 5.18).
    pub task_state: u32,
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,
    pub file_inode: u32,
    pub file_private_data: u32,
    pub inode_mode: u32,
    pub inode_ino: u32,
    pub socket_sk: u32,
    pub sock_family: u32,
    pub sock_daddr: u32,
    pub sock_rcv_saddr: u32,
    pub sock_dport: u32,
    pub sock_num: u32,
    pub sock_v6_daddr: u32,
    pub sock_v6_rcv_saddr: u32,
    pub sock_protocol: u32,
}

impl KernelOffsets {
    pub const MISSING: u32 = u32::MAX;
}

/// What a file descriptor referred to, read in the kernel at the event
/// (sockets are often closed microseconds after a slow call returns).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdInfo {
    /// `FD_*`.
    pub kind: u32,
    /// IP protocol of an inet socket (6 TCP, 17 UDP).
    pub protocol: u32,
    pub inode: u64,
    /// Inet addresses: IPv4 in the first 4 bytes, or IPv6; network order.
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    /// Ports in host order.
    pub local_port: u16,
    pub remote_port: u16,
    pub _pad: u32,
}

pub const FD_UNKNOWN: u32 = 0;
pub const FD_INET: u32 = 1;
pub const FD_INET6: u32 = 2;
/// Another socket family (unix, netlink, ...).
pub const FD_SOCKET: u32 = 3;
pub const FD_FILE: u32 = 4;
pub const FD_PIPE: u32 = 5;
/// Character device, anonymous inode (eventfd, epoll, ...), other.
pub const FD_OTHER: u32 = 6;

const _: () = {
    assert!(core::mem::size_of::<KernelOffsets>() == 23 * 4);
    assert!(core::mem::size_of::<FdInfo>() == 56);
};

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)] structs of integers with explicit padding.
    unsafe impl aya::Pod for super::KernelOffsets {}
}
