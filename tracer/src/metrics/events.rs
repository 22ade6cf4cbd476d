//! The metrics counted from streamed events as they arrive (stalls, blocking
//! calls, sleeps): per loop thread, keyed by a few words that take a bounded
//! number of values (cause kind, syscall, fd kind, wait reason, a bounded
//! task label), never by a file path or a socket peer.

use std::collections::BTreeMap;

use super::{recent::Recent, tasks::TaskLabels};
use crate::{
    analyze::{
        loops::{cause_kind, min_covering_call_ns, mostly_gil},
        offcpu::{WaitReason, reason},
    },
    report::model::CauseKind,
    syscalls,
    trace::{BlockingCall, FdKind, SampleRecord, StallRecord},
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

/// A thread, one or two label values besides, and the task label ("" for
/// none).
pub type Key = (u32, &'static str, String, String);

/// The counts, as each reading copies them.
#[derive(Debug, Clone, Default)]
pub struct EventSums {
    /// Stalls by (tid, cause kind, longest syscall or "", task).
    pub stalls: BTreeMap<Key, Sum>,
    /// Blocking calls by (tid, target kind, syscall, task).
    pub blocking: BTreeMap<Key, Sum>,
    /// Streamed sleeps by (tid, wait reason, "", task).
    pub offcpu: BTreeMap<Key, Sum>,
    /// The process of each thread counted.
    pub pids: BTreeMap<u32, u32>,
}

/// The counts, and what they are counted with.
#[derive(Default)]
pub struct EventCounters {
    pub sums: EventSums,
    tasks: TaskLabels,
    recent: Recent,
}

impl EventCounters {
    /// A stall of `--threshold` `threshold_ns` or more: its cause kind as
    /// the report says it (a GIL wait for most of it: `gil`), and its task.
    pub fn stall(&mut self, stall: &StallRecord, threshold_ns: u64) {
        let window = (stall.start_ns, stall.start_ns + stall.duration_ns);
        let min_call_ns = min_covering_call_ns(stall, threshold_ns);
        let inside = self.recent.in_stall(stall.tid, window, min_call_ns);
        let kind = if mostly_gil(stall, inside.gil_ns) {
            CauseKind::Gil
        } else {
            cause_kind(stall)
        };
        // The syscall names a stall spent asleep; a CPU-bound one has none.
        let syscall = match (kind, &stall.longest) {
            (CauseKind::Syscall | CauseKind::Mixed | CauseKind::Gil, Some(longest)) => {
                syscalls::name(longest.nr)
            }
            _ => String::new(),
        };
        // Asleep: the task of the call it slept in; else the one it ran.
        let task = match kind {
            CauseKind::Syscall | CauseKind::Mixed | CauseKind::Gil => inside.call_task,
            CauseKind::Cpu | CauseKind::Runqueue => inside.sample_task,
        };
        self.sums.pids.insert(stall.tid, stall.pid);
        self.sums
            .stalls
            .entry((
                stall.tid,
                cause_name(kind),
                syscall,
                task.unwrap_or_default(),
            ))
            .or_default()
            .add(stall.duration_ns);
    }

    /// A streamed call: a blocking call if it took `threshold_ns`, an
    /// off-CPU span if it slept `offcpu_min_ns`.
    pub fn call(&mut self, call: &BlockingCall, threshold_ns: u64, offcpu_min_ns: u64) {
        self.sums.pids.insert(call.tid, call.pid);
        let syscall = syscalls::name(call.nr);
        let task = self.tasks.label(call.task.as_ref());
        self.recent.call(
            call.tid,
            call.start_ns,
            call.duration_ns,
            call.gil.is_some(),
            task.clone(),
        );
        if call.blocked_ns >= offcpu_min_ns {
            let why = match call.gil {
                Some(_) => WaitReason::Gil,
                None => reason(&syscall, call.fd_kind, call.arg0, call.uninterruptible),
            };
            self.sums
                .offcpu
                .entry((call.tid, why.name(), String::new(), task.clone()))
                .or_default()
                .add(call.blocked_ns);
        }
        if call.duration_ns >= threshold_ns {
            self.sums
                .blocking
                .entry((call.tid, target_kind(call), syscall, task))
                .or_default()
                .add(call.duration_ns);
        }
    }

    /// A CPU sample: its task, for the stall it may be in.
    pub fn sample(&mut self, sample: &SampleRecord) {
        let task = self.tasks.label(sample.task.as_ref());
        self.recent.sample(sample.tid, sample.time_ns, task);
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
        counters.stall(&stall(30_000_000, 29_000_000, 1_000_000), 10_000_000);
        counters.stall(&stall(20_000_000, 19_000_000, 1_000_000), 10_000_000);
        counters.stall(&stall(40_000_000, 0, 40_000_000), 10_000_000);
        let blocked = counters.sums.stalls[&(11, "syscall", "recvfrom".to_string(), String::new())];
        assert_eq!(
            blocked,
            Sum {
                count: 2,
                ns: 50_000_000
            }
        );
        let cpu = counters.sums.stalls[&(11, "cpu", String::new(), String::new())];
        assert_eq!(
            cpu,
            Sum {
                count: 1,
                ns: 40_000_000
            }
        );
        assert_eq!(counters.sums.pids[&11], 10);
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
        let blocking = counters.sums.blocking[&(11, "file", "read".to_string(), String::new())];
        assert_eq!(
            blocking,
            Sum {
                count: 1,
                ns: 12_000_000
            }
        );
        let disk = counters.sums.offcpu[&(11, "disk", String::new(), String::new())];
        assert_eq!(
            disk,
            Sum {
                count: 2,
                ns: 13_000_000
            }
        );
    }
}
