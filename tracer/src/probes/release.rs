//! The end of tracing without the wait for detaching. Programs stop through
//! a flag (see `tracer-ebpf/src/target.rs`); detaching them afterwards
//! takes ~40 ms per `syscalls:` tracepoint, one after the other (each waits
//! out an RCU grace period under a kernel mutex): 0.7 s in the default
//! mode, which the user would otherwise wait for after the report. A child
//! process keeps the stopped programs until this process has exited, then
//! exits itself, and the kernel detaches them as its files close.

use std::io;

/// membarrier(2) command that returns once every CPU has passed through a
/// grace period of RCU (synchronize_rcu()).
const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;

/// Returns once no BPF program that began before the call is still running:
/// programs run inside RCU read-side sections. Fails on kernels that
/// refuse it (nohz_full).
pub fn wait_for_running_programs() -> io::Result<()> {
    // SAFETY: membarrier takes no pointers.
    let ret = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Keeps `held` (its files: programs, links, maps) open in a child process
/// until this process exits. If no child can be started, `held` is dropped
/// here and now.
pub fn hold_until_exit<T>(held: T) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return drop(held);
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child calls only async-signal-safe functions (close,
    // read, _exit), as is required after fork in a threaded process.
    match unsafe { libc::fork() } {
        -1 => {
            // SAFETY: both fds are ours and closed once.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            drop(held);
        }
        // SAFETY: as above.
        0 => unsafe { wait_for_parent_then_exit(read_end, write_end) },
        _ => {
            // SAFETY: the read end is ours and closed once.
            unsafe { libc::close(read_end) };
            // The write end stays open until this process exits; then the
            // child reads end of file. Dropping `held` here would only
            // close our copies, which costs time and changes nothing.
            std::mem::forget(held);
        }
    }
}

/// The child: lets go of the terminal's streams (a reader of our output
/// must see its end when the parent exits), waits for the parent to exit,
/// and exits.
///
/// # Safety
/// Only in the child of a fork; `read_end` and `write_end` are the pipe.
unsafe fn wait_for_parent_then_exit(read_end: libc::c_int, write_end: libc::c_int) -> ! {
    let mut byte = 0u8;
    // SAFETY: closing fds this process owns; reading into a valid byte.
    unsafe {
        libc::close(write_end);
        for fd in 0..3 {
            libc::close(fd);
        }
        while libc::read(read_end, (&raw mut byte).cast(), 1) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
        libc::_exit(0)
    }
}
