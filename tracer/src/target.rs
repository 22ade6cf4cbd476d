//! The process to trace: checks on a pid given by the user, and starting a
//! command held at a gate until the probes are attached.

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

/// A started command, waiting at the gate before its `execve`.
pub struct Launched {
    pub pid: u32,
    gate: OwnedFd,
    exec_error: OwnedFd,
}

impl Launched {
    /// Lets the command run (it execs), and reports whether exec failed.
    pub fn release(self, command: &str) -> Result<(), TargetError> {
        let spawn_error = |source| TargetError::Spawn {
            command: command.to_string(),
            source,
        };
        // SAFETY: writing one byte from a valid buffer to an fd we own.
        if unsafe { libc::write(self.gate.as_raw_fd(), [1u8].as_ptr().cast(), 1) } != 1 {
            return Err(spawn_error(io::Error::last_os_error()));
        }
        drop(self.gate);
        let mut errno = [0u8; 4];
        // The exec-error pipe is close-on-exec: EOF means exec succeeded.
        // SAFETY: reading into a valid 4-byte buffer from an fd we own.
        let n = unsafe { libc::read(self.exec_error.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n == 4 {
            return Err(spawn_error(io::Error::from_raw_os_error(
                i32::from_ne_bytes(errno),
            )));
        }
        Ok(())
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

/// Forks a child that waits for [`Launched::release`] before it execs
/// `argv`, so tracing can start before the command's first instruction.
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
    // Everything the child needs is allocated before fork: after it, only
    // async-signal-safe calls are allowed.
    let path = cstring(program.as_os_str()).map_err(spawn_error)?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<_, _>>()
        .map_err(spawn_error)?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut pair = k;
            pair.push("=");
            pair.push(v);
            cstring(&pair)
        })
        .collect::<Result<_, _>>()
        .map_err(spawn_error)?;
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let (gate_read, gate_write) = pipe().map_err(spawn_error)?;
    let (error_read, error_write) = pipe().map_err(spawn_error)?;

    // SAFETY: fork() duplicates the process; the child below only calls
    // async-signal-safe functions (read, execve, write, _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(spawn_error(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: in the child; all pointers were prepared before fork.
        unsafe {
            let mut byte = 0u8;
            if libc::read(gate_read.as_raw_fd(), (&raw mut byte).cast(), 1) != 1 {
                // The tracer died before releasing us: do not run untraced.
                libc::_exit(126);
            }
            libc::execve(path.as_ptr(), arg_ptrs.as_ptr(), env_ptrs.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(error_write.as_raw_fd(), (&raw const errno).cast(), 4);
            libc::_exit(127);
        }
    }
    drop(gate_read);
    drop(error_write);
    Ok(Launched {
        pid: pid as u32,
        gate: gate_write,
        exec_error: error_read,
    })
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
