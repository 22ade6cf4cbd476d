//! What /proc says about a process: name, command line, state, thread group.

use std::{fs, io, path::PathBuf};

/// `PF_KTHREAD` in the flags field of /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub comm: String,
    /// One-letter state: R, S, D, Z, T, ...
    pub state: char,
    pub ppid: u32,
    pub flags: u64,
}

impl ProcStat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

pub fn proc_path(pid: u32, rest: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{rest}"))
}

/// Parses /proc/PID/stat (or /proc/PID/task/TID/stat).
pub fn read_stat(path: &std::path::Path) -> io::Result<ProcStat> {
    parse_stat(&fs::read_to_string(path)?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
}

/// The comm is in parentheses and may itself contain spaces and ')', so the
/// fields are counted from the last ')'.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    // pgrp, session, tty_nr, tpgid come before flags.
    let flags = rest.nth(4)?.parse().ok()?;
    Some(ProcStat {
        comm,
        state,
        ppid,
        flags,
    })
}

/// The thread group (process) a task id belongs to, from /proc/PID/status.
pub fn read_tgid(pid: u32) -> io::Result<u32> {
    let status = fs::read_to_string(proc_path(pid, "status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Tgid in status"))
}

/// The command line, split at NULs.
pub fn read_cmdline(pid: u32) -> io::Result<Vec<String>> {
    let raw = fs::read(proc_path(pid, "cmdline"))?;
    Ok(raw
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect())
}

/// A thread's name, or an empty string if it is gone.
pub fn read_thread_comm(pid: u32, tid: u32) -> String {
    fs::read_to_string(proc_path(pid, &format!("task/{tid}/comm")))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// The ids of a process's threads.
pub fn list_threads(pid: u32) -> io::Result<Vec<u32>> {
    let mut tids: Vec<u32> = fs::read_dir(proc_path(pid, "task"))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_comm() {
        let line = "1234 (my (weird) app) S 1 1234 1234 0 -1 4194560 100 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "my (weird) app");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.flags, 4194560);
        assert!(!stat.is_kernel_thread());
    }

    #[test]
    fn kernel_thread_flag() {
        let line = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0";
        assert!(parse_stat(line).unwrap().is_kernel_thread());
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let stat = read_stat(&proc_path(me, "stat")).unwrap();
        assert!(!stat.is_zombie());
        assert_eq!(read_tgid(me).unwrap(), me);
        assert!(list_threads(me).unwrap().contains(&me));
        assert!(!read_cmdline(me).unwrap().is_empty());
    }
}
