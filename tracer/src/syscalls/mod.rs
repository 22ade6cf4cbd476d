//! Syscall numbers: names, and which ones take a file descriptor first.

mod table;

use tracer_common::PAGE_FAULT_NR;

/// What a sleep in a page fault is called where a syscall's name would be.
pub const PAGE_FAULT: &str = "page fault";

/// The syscall's name, or `syscall_N` for a number this table does not
/// know; page faults (`PAGE_FAULT_NR`) are [`PAGE_FAULT`].
pub fn name(nr: u32) -> String {
    if nr == PAGE_FAULT_NR {
        return PAGE_FAULT.to_string();
    }
    match table::NAMES.get(nr as usize) {
        Some(name) if !name.is_empty() => (*name).to_string(),
        _ => format!("syscall_{nr}"),
    }
}

/// The number of a syscall name (for tests and filters).
pub fn number(name: &str) -> Option<u32> {
    table::NAMES
        .iter()
        .position(|n| *n == name)
        .map(|nr| nr as u32)
}

/// Syscalls whose first argument is a file descriptor.
const FD_FIRST: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "recvmmsg",
    "sendmmsg",
    "accept",
    "accept4",
    "connect",
    "bind",
    "listen",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "fsync",
    "fdatasync",
    "flock",
    "ioctl",
    "fcntl",
    "lseek",
    "getdents64",
    "fstat",
    "ftruncate",
    "fallocate",
    "sync_file_range",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "sendfile",
    "splice",
    "tee",
    "copy_file_range",
    "io_uring_enter",
    "close",
    "dup",
    "dup2",
    "dup3",
    "syncfs",
    "fstatfs",
    "fchmod",
    "fchown",
    "readahead",
];

/// Whether the first argument of syscall `nr` is a file descriptor.
pub fn takes_fd(nr: u32) -> bool {
    table::NAMES
        .get(nr as usize)
        .is_some_and(|name| FD_FIRST.contains(name))
}

/// The key of a poll-family wait (as the kernel computes it, see
/// tracer-ebpf/src/loops.rs), to tell a loop's own wait from a nested one.
/// poll and select count as one key (their fds are not known here).
pub fn wait_key(nr: u32, arg0: u64) -> Option<u64> {
    match name(nr).as_str() {
        "epoll_wait" | "epoll_pwait" | "epoll_pwait2" => Some(1 << 32 | (arg0 & 0xffff_ffff)),
        "poll" | "ppoll" | "select" | "pselect6" => Some(2 << 32),
        "io_uring_enter" => Some(3 << 32 | (arg0 & 0xffff_ffff)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(name(0), "read");
        assert_eq!(name(110), "getppid");
        assert_eq!(name(232), "epoll_wait");
        assert_eq!(name(441), "epoll_pwait2");
        assert_eq!(name(9999), "syscall_9999");
        assert_eq!(number("clock_nanosleep"), Some(230));
        assert!(takes_fd(number("recvfrom").unwrap()));
        assert!(!takes_fd(number("clock_nanosleep").unwrap()));
        assert!(
            FD_FIRST.iter().all(|n| number(n).is_some()),
            "typo in FD_FIRST"
        );
    }
}
