//! What a file descriptor of the current task refers to, read through
//! task->files at the event: sockets are often closed right after a slow
//! call returns, before userspace could look in /proc.

use tracer_common::{
    FdInfo, KernelOffsets,
    kernel::{FD_FILE, FD_INET, FD_INET6, FD_OTHER, FD_PIPE, FD_SOCKET, FD_UNKNOWN},
};

use crate::kernel::{self, offsets, read};

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const S_IFIFO: u16 = 0o010000;
const S_IFREG: u16 = 0o100000;
const S_IFDIR: u16 = 0o040000;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Fills `out` for fd `fd` of the current task (FD_UNKNOWN if it is not an
/// open fd).
///
/// # Safety
/// `out` must be valid for writes.
#[inline(never)]
pub unsafe fn describe(fd: u64, out: *mut FdInfo) {
    let info = lookup(fd, &offsets()).unwrap_or_default();
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { *out = info };
}

fn lookup(fd: u64, k: &KernelOffsets) -> Option<FdInfo> {
    if k.task_files == KernelOffsets::MISSING || fd > i32::MAX as u64 {
        return None;
    }
    let task = kernel::current_task();
    let files: u64 = read(task, k.task_files)?;
    let fdt: u64 = read(files, k.files_fdt)?;
    let max_fds: u32 = read(fdt, k.fdtable_max_fds)?;
    if fd >= max_fds as u64 {
        return None;
    }
    let table: u64 = read(fdt, k.fdtable_fd)?;
    let file: u64 = read(table + fd * 8, 0)?;
    if file == 0 {
        return None;
    }
    let inode: u64 = read(file, k.file_inode)?;
    let mode: u16 = read(inode, k.inode_mode)?;
    let mut info = FdInfo {
        kind: FD_UNKNOWN,
        inode: read(inode, k.inode_ino)?,
        ..FdInfo::default()
    };
    info.kind = match mode & S_IFMT {
        S_IFSOCK => return Some(socket(file, k, info)),
        S_IFIFO => FD_PIPE,
        S_IFREG | S_IFDIR => FD_FILE,
        _ => FD_OTHER,
    };
    Some(info)
}

fn socket(file: u64, k: &KernelOffsets, mut info: FdInfo) -> FdInfo {
    info.kind = FD_SOCKET;
    let Some(sk) = read::<u64>(file, k.file_private_data).and_then(|s| read::<u64>(s, k.socket_sk))
    else {
        return info;
    };
    let family: u16 = read(sk, k.sock_family).unwrap_or(0);
    info.protocol = read::<u16>(sk, k.sock_protocol).unwrap_or(0) as u32;
    info.local_port = read(sk, k.sock_num).unwrap_or(0);
    info.remote_port = u16::from_be(read(sk, k.sock_dport).unwrap_or(0));
    match family {
        AF_INET => {
            info.kind = FD_INET;
            let local: [u8; 4] = read(sk, k.sock_rcv_saddr).unwrap_or_default();
            let remote: [u8; 4] = read(sk, k.sock_daddr).unwrap_or_default();
            info.local_addr[..4].copy_from_slice(&local);
            info.remote_addr[..4].copy_from_slice(&remote);
        }
        AF_INET6 => {
            info.kind = FD_INET6;
            info.local_addr = read(sk, k.sock_v6_rcv_saddr).unwrap_or_default();
            info.remote_addr = read(sk, k.sock_v6_daddr).unwrap_or_default();
        }
        _ => {}
    }
    info
}
