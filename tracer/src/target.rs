//! The processes to trace: checks on the pids given by the user, their
//! descendants already running, and starting a command held at a gate until
//! the probes are attached.

pub mod cgroup;
mod descendants;

use std::{
    ffi::{CString, OsStr, OsString},
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

use crate::{
    procfs::status::{self, proc_path},
    trace::TargetInfo,
};

pub use descendants::{Descendant, trace_descendants};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no process with pid {0}")]
    NoSuchProcess(u32),
    #[error("pid {pid} is a kernel thread ({comm}); tracer traces user processes")]
    KernelThread { pid: u32, comm: String },
    #[error("pid {0} is tracer itself")]
    Itself(u32),
    #[error("process {pid} ({comm}) has already exited (it is a zombie); nothing to trace")]
    Zombie { pid: u32, comm: String },
    #[error("cannot read /proc/{pid}: {source}")]
    Proc {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("command not found: {0}")]
    CommandNotFound(String),
    #[error("cannot start {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
}

/// Checks that `pid` is a live user process other than ourselves and
/// describes it. A thread id stands for its whole process.
pub fn inspect(pid: u32) -> Result<TargetInfo, TargetError> {
    if pid == std::process::id() {
        return Err(TargetError::Itself(pid));
    }
    let stat = match status::read_stat(&proc_path(pid, "stat")) {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TargetError::NoSuchProcess(pid));
        }
        Err(source) => return Err(TargetError::Proc { pid, source }),
    };
    if stat.is_kernel_thread() {
        return Err(TargetError::KernelThread {
            pid,
            comm: stat.comm,
        });
    }
    if stat.is_zombie() {
        return Err(TargetError::Zombie {
            pid,
            comm: stat.comm,
        });
    }
    let tgid = status::read_tgid(pid).map_err(|source| TargetError::Proc { pid, source })?;
    if tgid != pid {
        log::warn!("{pid} is a thread of process {tgid}: tracing the whole process {tgid}");
        return inspect(tgid);
    }
    Ok(TargetInfo {
        pid,
        comm: stat.comm,
        cmdline: status::read_cmdline(pid).unwrap_or_default(),
    })
}

/// Checks and describes every pid given (see [`inspect`]), in order; a
/// thread id given with its process, or two threads of one process, name
/// one process, traced once.
pub fn inspect_all(pids: &[u32]) -> Result<Vec<TargetInfo>, TargetError> {
    let mut targets: Vec<TargetInfo> = Vec::with_capacity(pids.len());
    for &pid in pids {
        let target = inspect(pid)?;
        if !targets.iter().any(|t| t.pid == target.pid) {
            targets.push(target);
        }
    }
    Ok(targets)
}

/// A pidfd: readable once the process has exited, and immune to pid reuse.
pub fn open_pidfd(pid: u32) -> Result<OwnedFd, TargetError> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if fd < 0 {
        let source = io::Error::last_os_error();
        return Err(match source.raw_os_error() {
            Some(libc::ESRCH) => TargetError::NoSuchProcess(pid),
            _ => TargetError::Proc { pid, source },
        });
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A started command, waiting at the gate before its `execve`. Dropped
/// without [`Launched::release`] (attaching failed), it kills and reaps the
/// command, which then never runs.
pub struct Launched {
    pub pid: u32,
    gate: OwnedFd,
    exec_error: OwnedFd,
    released: bool,
}

impl Launched {
    /// Lets the command run (it execs), and reports whether exec failed.
    pub fn release(mut self, command: &str) -> Result<(), TargetError> {
        let spawn_error = |source| TargetError::Spawn {
            command: command.to_string(),
            source,
        };
        // SAFETY: writing one byte from a valid buffer to an fd we own.
        if unsafe { libc::write(self.gate.as_raw_fd(), [1u8].as_ptr().cast(), 1) } != 1 {
            return Err(spawn_error(io::Error::last_os_error()));
        }
        // The exec-error pipe is close-on-exec: EOF means exec succeeded.
        match read_errno(&self.exec_error) {
            Some(errno) => Err(spawn_error(io::Error::from_raw_os_error(errno))),
            None => {
                self.released = true;
                Ok(())
            }
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if !self.released {
            kill_and_reap(self.pid);
        }
    }
}

/// The errno a failed exec wrote to its pipe, or None at end of file.
fn read_errno(pipe: &OwnedFd) -> Option<i32> {
    let mut errno = [0u8; 4];
    loop {
        // SAFETY: reading into a valid 4-byte buffer from an fd we own.
        let n = unsafe { libc::read(pipe.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return (n == 4).then(|| i32::from_ne_bytes(errno));
    }
}

/// Ends a child of ours that must not run, and reaps it so that no zombie
/// is left either.
fn kill_and_reap(pid: u32) {
    // SAFETY: signalling and waiting for our own child; waitpid writes the
    // status into a valid int.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
        let mut status = 0;
        while libc::waitpid(pid as i32, &mut status, 0) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
    }
}

/// Finds `program` like a shell does: a path if it has a slash, else in PATH.
pub fn find_program(program: &OsStr) -> Option<PathBuf> {
    let is_executable = |path: &Path| {
        CString::new(path.as_os_str().as_bytes())
            // SAFETY: access() reads a valid NUL-terminated path.
            .is_ok_and(|c| path.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0)
    };
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn cstring(text: &OsStr) -> Result<CString, io::Error> {
    CString::new(text.as_bytes()).map_err(|_| io::Error::other("argument contains a NUL byte"))
}

/// What the forked child needs, made before fork: after it, in a process
/// with threads, only async-signal-safe calls are allowed (no allocation).
struct Exec {
    path: CString,
    /// Keep the strings the pointers below point into.
    _args: Vec<CString>,
    _env: Vec<CString>,
    arg_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
}

impl Exec {
    fn new(program: &Path, argv: &[OsString]) -> io::Result<Self> {
        let path = cstring(program.as_os_str())?;
        let args: Vec<CString> = argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?;
        let env: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| {
                let mut pair = k;
                pair.push("=");
                pair.push(v);
                cstring(&pair)
            })
            .collect::<Result<_, _>>()?;
        let null_terminated = |strings: &[CString]| {
            let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            ptrs
        };
        Ok(Self {
            path,
            arg_ptrs: null_terminated(&args),
            env_ptrs: null_terminated(&env),
            _args: args,
            _env: env,
        })
    }
}

/// The pipes between the tracer and the gated child. Each end is
/// close-on-exec, but a fork copies them all: the child first closes the
/// tracer's ends (holding the gate's write end itself, it would wait
/// forever once the tracer is gone).
struct Pipes {
    gate_read: OwnedFd,
    gate_write: OwnedFd,
    error_read: OwnedFd,
    error_write: OwnedFd,
}

/// Forks a child that waits for [`Launched::release`] before it execs
/// `argv`, so tracing can start before the command's first instruction.
///
/// The child dies with the tracer: SIGKILL while it waits at the gate, so a
/// failed or killed start leaves nothing behind; SIGTERM once the command
/// runs (also when the tracer ends normally with the command still running,
/// after `--duration`), so it can end cleanly and does not outlive its
/// trace. Call this on the main thread: the kernel sends that signal when
/// the thread that forked ends.
pub fn launch(argv: &[OsString]) -> Result<Launched, TargetError> {
    let command = argv
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let spawn_error = |source| TargetError::Spawn {
        command: command.clone(),
        source,
    };
    let program = find_program(argv.first().map(OsString::as_os_str).unwrap_or_default())
        .ok_or_else(|| TargetError::CommandNotFound(command.clone()))?;
    let exec = Exec::new(&program, argv).map_err(spawn_error)?;
    let (gate_read, gate_write) = pipe().map_err(spawn_error)?;
    let (error_read, error_write) = pipe().map_err(spawn_error)?;
    let pipes = Pipes {
        gate_read,
        gate_write,
        error_read,
        error_write,
    };
    let pid = fork_gated(&exec, &pipes).map_err(spawn_error)?;
    let Pipes {
        gate_read,
        gate_write,
        error_read,
        error_write,
    } = pipes;
    // The child's ends: with them closed here, a pipe that the child has
    // left too reads end of file (or fails a write) instead of blocking.
    drop((gate_read, error_write));
    Ok(Launched {
        pid,
        gate: gate_write,
        exec_error: error_read,
        released: false,
    })
}

/// Forks the gated child (see [`gated_child`]) with every signal blocked,
/// so that no handler of the tracer runs in it before it has reset them.
fn fork_gated(exec: &Exec, pipes: &Pipes) -> io::Result<u32> {
    // SAFETY: getpid has no preconditions.
    let tracer = unsafe { libc::getpid() };
    // SAFETY: sigset_t is plain data, filled by sigfillset before use.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pthread_sigmask writes the old mask into it.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers; this changes only this thread's mask,
    // restored below in the tracer.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the child runs only `gated_child`, which calls async-signal-
    // safe functions on memory prepared before the fork, and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child of the fork, as `gated_child` requires.
        unsafe { gated_child(tracer, exec, pipes) };
    }
    let fork_error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(fork_error);
    }
    Ok(pid as u32)
}

/// The child until its exec: lets go of the tracer's pipe ends, arranges
/// to die with the tracer, waits at the gate, then execs. On end of file at
/// the gate (the tracer is gone: the command must not run untraced) or any
/// error it exits at once.
///
/// # Safety
/// Only in the child of a fork, with every signal blocked; `tracer` is the
/// parent's pid.
unsafe fn gated_child(tracer: libc::pid_t, exec: &Exec, pipes: &Pipes) -> ! {
    // SAFETY: only async-signal-safe calls (close, prctl, getppid,
    // sigaction, sigprocmask, read, execve, write, _exit) on fds of this
    // process and on memory prepared before the fork.
    unsafe {
        libc::close(pipes.gate_write.as_raw_fd());
        libc::close(pipes.error_read.as_raw_fd());
        // If the tracer died before this prctl, nothing would signal us:
        // we would have been adopted by another process already.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != tracer {
            libc::_exit(126);
        }
        reset_signals();
        let mut byte = 0u8;
        loop {
            match libc::read(pipes.gate_read.as_raw_fd(), (&raw mut byte).cast(), 1) {
                1 => break,
                n if n < 0 && *libc::__errno_location() == libc::EINTR => continue,
                _ => libc::_exit(126),
            }
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
            libc::_exit(126);
        }
        libc::execve(
            exec.path.as_ptr(),
            exec.arg_ptrs.as_ptr(),
            exec.env_ptrs.as_ptr(),
        );
        let errno = *libc::__errno_location();
        libc::write(pipes.error_write.as_raw_fd(), (&raw const errno).cast(), 4);
        libc::_exit(127)
    }
}

/// Gives the command the signal state a shell would: the signals the
/// tracer catches back to their default action (an exec would do that
/// too, but the child waits at the gate with them first: SIGTERM must end
/// it there), SIGPIPE too (Rust programs ignore it), and nothing blocked.
/// Signals ignored by whoever started the tracer (`nohup`) stay ignored.
///
/// # Safety
/// Only in the child of a fork: async-signal-safe calls only.
unsafe fn reset_signals() {
    // SAFETY: sigaction reads and writes valid structs; the libc wrapper
    // refuses (EINVAL) the signals that cannot be changed, which we skip.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in 1..=64 {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
                continue;
            }
            let caught =
                current.sa_sigaction != libc::SIG_DFL && current.sa_sigaction != libc::SIG_IGN;
            if caught || signal == libc::SIGPIPE {
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// Reaps a child that has exited and describes how it ended.
pub fn reap(pid: u32) -> Option<String> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into a valid int.
    let reaped = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
    if reaped != pid as i32 {
        return None;
    }
    Some(if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        "ended".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_pids() {
        assert!(matches!(
            inspect(std::process::id()),
            Err(TargetError::Itself(_))
        ));
        assert!(matches!(
            inspect(i32::MAX as u32),
            Err(TargetError::NoSuchProcess(_))
        ));
        // kthreadd is pid 2 on Linux.
        assert!(matches!(inspect(2), Err(TargetError::KernelThread { .. })));
    }

    #[test]
    fn finds_programs() {
        assert!(find_program(OsStr::new("sh")).is_some());
        assert!(find_program(OsStr::new("/bin/sh")).is_some());
        assert!(find_program(OsStr::new("no-such-program-here")).is_none());
        let not_executable = tempfile::NamedTempFile::new().unwrap();
        assert!(find_program(not_executable.path().as_os_str()).is_none());
    }

    #[test]
    fn a_command_never_released_never_runs() {
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let launched = launch(&["touch".into(), ran.clone().into()]).unwrap();
        let pid = launched.pid;
        drop(launched);
        // Killed and reaped: no child of ours is left, the file never made.
        // SAFETY: waitpid on our own (former) child, with a valid int.
        let waited = unsafe { libc::waitpid(pid as i32, &mut 0, libc::WNOHANG) };
        assert_eq!(waited, -1, "child {pid} not reaped");
        assert!(!ran.exists());
    }

    #[test]
    fn launch_waits_for_release() {
        let launched = launch(&["true".into()]).unwrap();
        let pid = launched.pid;
        // Still at the gate: its comm is ours, not `true`.
        let comm = status::read_stat(&proc_path(pid, "stat")).unwrap().comm;
        assert_ne!(comm, "true");
        launched.release("true").unwrap();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
