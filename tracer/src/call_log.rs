//! The streamed calls of a trace: kept one by one up to a bound, then summed
//! per (thread, syscall, stack, target), so that a trace of a target making
//! thousands of slow calls a second stays small in memory and on disk.
//! Calls inside event-loop iterations may be kept in far greater numbers:
//! stalls are explained by them.

use std::collections::HashMap;

use crate::trace::{BlockingCall, CallGroup, StackId};

/// Calls kept one by one outside event-loop iterations, and inside.
const KEEP_OUTSIDE_LOOPS: usize = 10_000;
const KEEP_IN_LOOPS: usize = 100_000;

type GroupKey = (u32, u32, StackId, Option<String>);

pub struct CallLog {
    threshold_ns: u64,
    offcpu_min_ns: u64,
    kept: Vec<BlockingCall>,
    kept_outside: usize,
    groups: Vec<CallGroup>,
    index: HashMap<GroupKey, usize>,
}

impl CallLog {
    pub fn new(threshold_ns: u64, offcpu_min_ns: u64) -> Self {
        Self {
            threshold_ns,
            offcpu_min_ns,
            kept: Vec::new(),
            kept_outside: 0,
            groups: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub fn add(&mut self, call: BlockingCall, in_iteration: bool) {
        let room = if in_iteration {
            self.kept.len() - self.kept_outside < KEEP_IN_LOOPS
        } else {
            self.kept_outside < KEEP_OUTSIDE_LOOPS
        };
        if room {
            self.kept_outside += usize::from(!in_iteration);
            self.kept.push(call);
            return;
        }
        let key = (call.tid, call.nr, call.stack, call.target.clone());
        let next = self.groups.len();
        let at = *self.index.entry(key).or_insert(next);
        if at == next {
            self.groups.push(CallGroup {
                first: call.clone(),
                count: 0,
                blocking_count: 0,
                blocking_ns: 0,
                blocking_max_ns: 0,
                offcpu_count: 0,
                offcpu_ns: 0,
            });
        }
        let group = &mut self.groups[at];
        group.count += 1;
        if call.duration_ns >= self.threshold_ns {
            group.blocking_count += 1;
            group.blocking_ns += call.duration_ns;
            group.blocking_max_ns = group.blocking_max_ns.max(call.duration_ns);
        }
        if call.blocked_ns >= self.offcpu_min_ns {
            group.offcpu_count += 1;
            group.offcpu_ns += call.blocked_ns;
        }
    }

    /// The calls kept one by one so far.
    pub fn kept(&self) -> &[BlockingCall] {
        &self.kept
    }

    /// The calls kept one by one, and the groups of the others.
    pub fn finish(self) -> (Vec<BlockingCall>, Vec<CallGroup>) {
        (self.kept, self.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::FdKind;

    fn call(tid: u32, duration_ns: u64, blocked_ns: u64) -> BlockingCall {
        BlockingCall {
            pid: 1,
            tid,
            nr: 230,
            start_ns: 0,
            duration_ns,
            ret: 0,
            arg0: 0,
            fd: None,
            target: None,
            fd_kind: FdKind::Unknown,
            blocked_ns,
            uninterruptible: false,
            stack: 0,
            task: None,
            gil: None,
        }
    }

    #[test]
    fn keeps_up_to_the_bound_then_groups() {
        let mut log = CallLog::new(10, 1);
        for _ in 0..KEEP_OUTSIDE_LOOPS + 3 {
            log.add(call(7, 20, 20), false);
        }
        log.add(call(7, 5, 0), false);
        // Loop iterations have their own, larger room.
        log.add(call(8, 50, 50), true);
        let (kept, groups) = log.finish();
        assert_eq!(kept.len(), KEEP_OUTSIDE_LOOPS + 1);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(
            (g.count, g.blocking_count, g.blocking_ns, g.blocking_max_ns),
            (4, 3, 60, 20)
        );
        assert_eq!((g.offcpu_count, g.offcpu_ns), (3, 60));
    }
}
