//! Once recording has stopped, the report is being written; a second Ctrl-C
//! means "don't wait for it": exit at once with status 130 (128 + SIGINT).

use std::io::Write;

extern "C" fn abort_now(_signal: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(130) };
}

/// From now on SIGINT exits immediately (it replaces the runtime's
/// handler, which only served to stop recording). Says so on stderr unless
/// `quiet`.
pub fn second_interrupt_aborts(quiet: bool) {
    // SAFETY: installs a handler that only calls an async-signal-safe
    // function; the sigaction struct is fully initialised.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = abort_now as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
    if !quiet {
        let _ = writeln!(
            std::io::stderr(),
            "tracer: recording stopped, writing the report (Ctrl-C again to abort)"
        );
    }
}
