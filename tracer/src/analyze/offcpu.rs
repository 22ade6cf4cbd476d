//! Off-CPU time: where threads slept, and why, in words a person knows —
//! waiting on a socket, the disk, a lock, a timer, a pipe, a child process,
//! or (for an event loop) simply idle, waiting for work.

use std::collections::HashMap;

use serde::Serialize;

use super::percentile::percentile;
use crate::{
    report::model::{OffCpuRow, RunqueueRow},
    syscalls,
    trace::{BlockingCall, FdKind, StackId, TaskInfo, Trace},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitReason {
    /// recv/accept/connect/send waits, reads and writes on sockets.
    Socket,
    /// Uninterruptible sleep (D state), file I/O, fsync.
    Disk,
    /// futex (mutexes, condition variables), file locks.
    Lock,
    /// A futex wait for a CPython GIL.
    Gil,
    /// nanosleep and friends, select/poll without descriptors.
    Sleep,
    /// Reads and writes on pipes.
    Pipe,
    /// wait4/waitid: waiting for a child process.
    Child,
    /// A page fault: code or data read from disk, a userfaultfd.
    #[serde(rename = "page fault")]
    PageFault,
    /// poll/epoll/select waits that are not an event loop's own idle wait
    /// (a nested loop, a helper thread).
    Poll,
    /// An event loop's own wait for work, or a pool worker's (libuv's
    /// threadpool, Node's platform workers): not a problem, kept apart.
    Idle,
    Other,
}

impl WaitReason {
    pub fn name(self) -> &'static str {
        match self {
            WaitReason::Socket => "socket",
            WaitReason::Disk => "disk",
            WaitReason::Lock => "lock",
            WaitReason::Gil => "gil",
            WaitReason::Sleep => "sleep",
            WaitReason::Pipe => "pipe",
            WaitReason::Child => "child",
            WaitReason::PageFault => "page fault",
            WaitReason::Poll => "poll",
            WaitReason::Idle => "idle",
            WaitReason::Other => "other",
        }
    }
}

/// Why a syscall slept, from what it was and what its fd was.
pub fn reason(syscall: &str, fd_kind: FdKind, arg0: u64, uninterruptible: bool) -> WaitReason {
    match syscall {
        // vfork sleeps uninterruptibly until the child execs or exits.
        "vfork" | "wait4" | "waitid" => return WaitReason::Child,
        syscalls::PAGE_FAULT => return WaitReason::PageFault,
        _ if uninterruptible => return WaitReason::Disk,
        _ => {}
    }
    match syscall {
        "futex" | "futex_waitv" | "futex_wait" | "flock" => WaitReason::Lock,
        "nanosleep" | "clock_nanosleep" => WaitReason::Sleep,
        // select(0, ...) and poll(NULL, 0, ...) are sleeps.
        "select" | "pselect6" if arg0 == 0 => WaitReason::Sleep,
        "accept" | "accept4" | "connect" | "recvfrom" | "recvmsg" | "recvmmsg" | "sendto"
        | "sendmsg" | "sendmmsg" => WaitReason::Socket,
        "fsync" | "fdatasync" | "sync_file_range" | "syncfs" => WaitReason::Disk,
        "poll" | "ppoll" | "select" | "pselect6" | "epoll_wait" | "epoll_pwait"
        | "epoll_pwait2" | "io_uring_enter" => WaitReason::Poll,
        "read" | "readv" | "pread64" | "preadv" | "preadv2" | "write" | "writev" | "pwrite64"
        | "pwritev" | "pwritev2" | "splice" | "sendfile" => match fd_kind {
            FdKind::Socket => WaitReason::Socket,
            FdKind::Pipe => WaitReason::Pipe,
            FdKind::File => WaitReason::Disk,
            FdKind::Other | FdKind::Unknown => WaitReason::Other,
        },
        _ => WaitReason::Other,
    }
}

/// Why a streamed call of `trace` slept. A pool worker waiting for work is
/// idle, like a loop between iterations.
pub fn call_reason(trace: &Trace, call: &BlockingCall) -> WaitReason {
    if super::idle_workers::is_idle_wait(trace, call) {
        return WaitReason::Idle;
    }
    if call.gil.is_some() {
        return WaitReason::Gil;
    }
    reason(
        &syscalls::name(call.nr),
        call.fd_kind,
        call.arg0,
        call.uninterruptible,
    )
}

/// Off-CPU rows, most time first: streamed sleeps grouped by (thread,
/// reason, stack, target); shorter ones by syscall; event-loop idle time
/// by loop thread.
pub fn rows(trace: &Trace) -> Vec<OffCpuRow> {
    type Key<'a> = (
        u32,
        WaitReason,
        StackId,
        Option<&'a str>,
        Option<&'a TaskInfo>,
    );
    let mut groups: HashMap<Key, (u64, u64, &BlockingCall)> = HashMap::new();
    // Kept calls and sums of calls not kept one by one, as (call, ns, count).
    let kept = trace
        .blocking
        .iter()
        .filter(|c| c.blocked_ns >= trace.offcpu_min_ns)
        .map(|c| (c, c.blocked_ns, 1));
    let summed = trace
        .call_groups
        .iter()
        .filter(|g| g.offcpu_count > 0)
        .map(|g| (&g.first, g.offcpu_ns, g.offcpu_count));
    for (call, ns, count) in kept.chain(summed) {
        let reason = call_reason(trace, call);
        let key = (
            call.tid,
            reason,
            call.stack,
            call.target.as_deref(),
            call.task.as_ref(),
        );
        let entry = groups.entry(key).or_insert((0, 0, call));
        entry.0 += ns;
        entry.1 += count;
    }
    let comm = |tid: u32| {
        trace
            .threads
            .iter()
            .find(|t| t.tid == tid)
            .map(|t| t.comm.clone())
    };
    let mut rows: Vec<OffCpuRow> = groups
        .into_iter()
        .map(
            |((tid, reason, stack, target, task), (total_ns, count, call))| OffCpuRow {
                reason,
                tid: Some(tid),
                comm: comm(tid),
                syscall: Some(syscalls::name(call.nr)),
                target: target.map(str::to_string),
                total_ns,
                count,
                stack: trace.stack(stack),
                task: task.cloned(),
            },
        )
        .collect();
    rows.extend(trace.offcpu_short.iter().map(|short| {
        let syscall = short.nr.map(syscalls::name);
        OffCpuRow {
            reason: syscall.as_deref().map_or(WaitReason::Other, |s| {
                reason(s, FdKind::Unknown, u64::MAX, false)
            }),
            tid: None,
            comm: None,
            syscall,
            target: None,
            total_ns: short.total_ns,
            count: short.count,
            stack: Vec::new(),
            task: None,
        }
    }));
    rows.extend(trace.loops.iter().map(|l| OffCpuRow {
        reason: WaitReason::Idle,
        tid: Some(l.tid),
        comm: comm(l.tid),
        syscall: None,
        target: None,
        total_ns: l.idle_ns,
        count: l.iterations,
        stack: Vec::new(),
        task: None,
    }));
    rows.sort_by(|a, b| {
        b.total_ns
            .cmp(&a.total_ns)
            .then(a.reason.cmp(&b.reason))
            .then(a.tid.cmp(&b.tid))
    });
    rows
}

/// Total off-CPU time by reason, most first.
pub fn by_reason(rows: &[OffCpuRow]) -> Vec<(WaitReason, u64)> {
    let mut totals: HashMap<WaitReason, u64> = HashMap::new();
    for row in rows {
        *totals.entry(row.reason).or_default() += row.total_ns;
    }
    let mut totals: Vec<(WaitReason, u64)> = totals.into_iter().collect();
    totals.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    totals
}

pub fn runqueue(trace: &Trace) -> RunqueueRow {
    let r = &trace.runqueue;
    let mean = r.total_ns.checked_div(r.count).unwrap_or(0);
    RunqueueRow {
        count: r.count,
        total_ns: r.total_ns,
        p50_ns: percentile(&r.hist, 0.50, r.max_ns, mean),
        p99_ns: percentile(&r.hist, 0.99, r.max_ns, mean),
        max_ns: r.max_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            reason("recvfrom", FdKind::Socket, 3, false),
            WaitReason::Socket
        );
        assert_eq!(reason("read", FdKind::Socket, 3, false), WaitReason::Socket);
        assert_eq!(reason("read", FdKind::Pipe, 3, false), WaitReason::Pipe);
        assert_eq!(reason("read", FdKind::File, 3, false), WaitReason::Disk);
        assert_eq!(reason("read", FdKind::Socket, 3, true), WaitReason::Disk);
        assert_eq!(reason("futex", FdKind::Unknown, 0, false), WaitReason::Lock);
        assert_eq!(
            reason("clock_nanosleep", FdKind::Unknown, 1, false),
            WaitReason::Sleep
        );
        assert_eq!(
            reason("pselect6", FdKind::Unknown, 0, false),
            WaitReason::Sleep
        );
        assert_eq!(
            reason("pselect6", FdKind::Unknown, 5, false),
            WaitReason::Poll
        );
        assert_eq!(
            reason("wait4", FdKind::Unknown, 0, false),
            WaitReason::Child
        );
        assert_eq!(reason("vfork", FdKind::Unknown, 0, true), WaitReason::Child);
        assert_eq!(
            reason("page fault", FdKind::Unknown, 0, true),
            WaitReason::PageFault
        );
        assert_eq!(
            reason("epoll_pwait", FdKind::Other, 9, false),
            WaitReason::Poll
        );
        assert_eq!(reason("ioctl", FdKind::Other, 9, false), WaitReason::Other);
    }

    #[test]
    fn short_sleeps_in_page_faults_are_page_faults() {
        let target = crate::trace::TargetInfo {
            pid: 1,
            comm: "t".into(),
            cmdline: vec![],
        };
        let trace = Trace {
            offcpu_short: vec![crate::trace::ShortOffCpu {
                nr: Some(tracer_common::PAGE_FAULT_NR),
                count: 40,
                total_ns: 9_000_000,
            }],
            ..Trace::empty(target)
        };
        let row = &rows(&trace)[0];
        assert_eq!(row.reason, WaitReason::PageFault);
        assert_eq!(row.syscall.as_deref(), Some("page fault"));
        assert_eq!((row.count, row.total_ns), (40, 9_000_000));
    }
}
