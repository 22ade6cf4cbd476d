//! The metrics counted from streamed events as they arrive (stalls, blocking
//! calls, sleeps): per loop thread, keyed by a few words that take a bounded
//! number of values (cause kind, syscall, fd kind, wait reason), never by a
//! file path or a socket peer.

use std::collections::BTreeMap;

use crate::{
    analyze::{loops::cause_kind, offcpu::reason},
    report::model::CauseKind,
    syscalls,
    trace::{BlockingCall, FdKind, StallRecord},
};

/// How many events, and their time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sum {
    pub count: u64,
    pub ns: u64,
}

impl Sum {
    fn add(&mut self, ns: u64) {
        self.count += 1;
        self.ns += ns;
    }
}

/// A thread and one label value besides (or two).
pub type Key = (u32, &'static str, String);

#[derive(Debug, Clone, Default)]
pub struct EventCounters {
    /// Stalls by (tid, cause kind, longest syscall or "").
    pub stalls: BTreeMap<Key, Sum>,
    /// Blocking calls by (tid, target kind, syscall).
    pub blocking: BTreeMap<Key, Sum>,
    /// Streamed sleeps by (tid, wait reason, "").
    pub offcpu: BTreeMap<Key, Sum>,
    /// The process of each thread counted.
    pub pids: BTreeMap<u32, u32>,
}

impl EventCounters {
    pub fn stall(&mut self, stall: &StallRecord) {
        let kind = cause_kind(stall);
        // The syscall names a stall spent asleep; a CPU-bound one has none.
        let syscall = match (kind, &stall.longest) {
            (CauseKind::Syscall | CauseKind::Mixed, Some(longest)) => syscalls::name(longest.nr),
            _ => String::new(),
        };
        self.pids.insert(stall.tid, stall.pid);
        self.stalls
            .entry((stall.tid, cause_name(kind), syscall))
            .or_default()
            .add(stall.duration_ns);
    }

    /// A streamed call: a blocking call if it took `threshold_ns`, an
    /// off-CPU span if it slept `offcpu_min_ns`.
    pub fn call(&mut self, call: &BlockingCall, threshold_ns: u64, offcpu_min_ns: u64) {
        self.pids.insert(call.tid, call.pid);
        let syscall = syscalls::name(call.nr);
        if call.blocked_ns >= offcpu_min_ns {
            let why = reason(&syscall, call.fd_kind, call.arg0, call.uninterruptible);
            self.offcpu
                .entry((call.tid, why.name(), String::new()))
                .or_default()
                .add(call.blocked_ns);
        }
        if call.duration_ns >= threshold_ns {
            self.blocking
                .entry((call.tid, target_kind(call), syscall))
                .or_default()
                .add(call.duration_ns);
        }
    }
}

pub fn cause_name(kind: CauseKind) -> &'static str {
    match kind {
        CauseKind::Syscall => "syscall",
        CauseKind::Cpu => "cpu",
        CauseKind::Runqueue => "runqueue",
        CauseKind::Mixed => "mixed",
        CauseKind::Gil => "gil",
    }
}

/// What a call waited on; "none" for a call on no fd (a sleep, a wait).
fn target_kind(call: &BlockingCall) -> &'static str {
    if call.fd.is_none() {
        return "none";
    }
    match call.fd_kind {
        FdKind::Socket => "socket",
        FdKind::Pipe => "pipe",
        FdKind::File => "file",
        FdKind::Other => "other",
        FdKind::Unknown => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::SyscallSummary;

    fn stall(duration_ns: u64, blocked_ns: u64, oncpu_ns: u64) -> StallRecord {
        StallRecord {
            pid: 10,
            tid: 11,
            start_ns: 0,
            duration_ns,
            oncpu_ns,
            runqueue_ns: 0,
            blocked_ns,
            longest: Some(SyscallSummary {
                nr: 45,
                duration_ns: blocked_ns,
                fd: Some(3),
                target: Some("tcp:1.2.3.4:5->6.7.8.9:10".into()),
            }),
            nested_loop: false,
        }
    }

    #[test]
    fn stalls_by_cause_and_syscall() {
        let mut counters = EventCounters::default();
        counters.stall(&stall(30_000_000, 29_000_000, 1_000_000));
        counters.stall(&stall(20_000_000, 19_000_000, 1_000_000));
        counters.stall(&stall(40_000_000, 0, 40_000_000));
        let blocked = counters.stalls[&(11, "syscall", "recvfrom".to_string())];
        assert_eq!(
            blocked,
            Sum {
                count: 2,
                ns: 50_000_000
            }
        );
        let cpu = counters.stalls[&(11, "cpu", String::new())];
        assert_eq!(
            cpu,
            Sum {
                count: 1,
                ns: 40_000_000
            }
        );
        assert_eq!(counters.pids[&11], 10);
    }

    #[test]
    fn calls_are_blocking_or_offcpu_or_both() {
        let mut counters = EventCounters::default();
        let call = BlockingCall {
            pid: 10,
            tid: 11,
            nr: 0,
            start_ns: 0,
            duration_ns: 12_000_000,
            ret: 0,
            arg0: 3,
            fd: Some(3),
            target: Some("/var/data/file".into()),
            fd_kind: FdKind::File,
            blocked_ns: 11_000_000,
            uninterruptible: false,
            stack: 0,
            task: None,
            gil: None,
        };
        counters.call(&call, 10_000_000, 1_000_000);
        counters.call(
            &BlockingCall {
                duration_ns: 2_000_000,
                blocked_ns: 2_000_000,
                ..call.clone()
            },
            10_000_000,
            1_000_000,
        );
        let blocking = counters.blocking[&(11, "file", "read".to_string())];
        assert_eq!(
            blocking,
            Sum {
                count: 1,
                ns: 12_000_000
            }
        );
        let disk = counters.offcpu[&(11, "disk", String::new())];
        assert_eq!(
            disk,
            Sum {
                count: 2,
                ns: 13_000_000
            }
        );
    }
}
