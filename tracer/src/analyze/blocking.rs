//! Blocking calls: each one, and grouped by (syscall, stack, fd target).
//! Pool workers waiting for work are idle, not blocked: left out.

use std::collections::HashMap;

use super::idle_workers::is_idle_wait;
use crate::{
    report::model::{BlockingGroup, BlockingRow},
    syscalls,
    trace::Trace,
};

pub fn calls(trace: &Trace) -> Vec<BlockingRow> {
    trace
        .blocking_calls()
        .filter(|call| !is_idle_wait(trace, call))
        .map(|call| BlockingRow {
            syscall: syscalls::name(call.nr),
            pid: call.pid,
            tid: call.tid,
            start_ns: call.start_ns,
            duration_ns: call.duration_ns,
            ret: call.ret,
            fd: call.fd,
            target: call.target.clone(),
            stack: trace.stack(call.stack),
            task: call.task.clone(),
        })
        .collect()
}

/// Groups, those of event-loop threads first (they stall the loop), then
/// the most total time first.
pub fn groups(trace: &Trace) -> Vec<BlockingGroup> {
    let mut groups: HashMap<(u32, u32, Option<&str>), BlockingGroup> = HashMap::new();
    // Each kept call, and each sum of calls not kept one by one, as
    // (call, count, total, max).
    let kept = trace
        .blocking_calls()
        .filter(|call| !is_idle_wait(trace, call))
        .map(|call| (call, 1, call.duration_ns, call.duration_ns));
    let summed = trace
        .call_groups
        .iter()
        .filter(|g| g.blocking_count > 0 && !is_idle_wait(trace, &g.first))
        .map(|g| (&g.first, g.blocking_count, g.blocking_ns, g.blocking_max_ns));
    for (call, count, total, max) in kept.chain(summed) {
        let group = groups
            .entry((call.nr, call.stack, call.target.as_deref()))
            .or_insert_with(|| BlockingGroup {
                syscall: syscalls::name(call.nr),
                target: call.target.clone(),
                count: 0,
                total_ns: 0,
                max_ns: 0,
                tids: Vec::new(),
                on_loop_thread: false,
                stack: trace.stack(call.stack),
            });
        group.count += count;
        group.total_ns += total;
        group.max_ns = group.max_ns.max(max);
        if !group.tids.contains(&call.tid) {
            group.tids.push(call.tid);
        }
        group.on_loop_thread |= trace.is_loop_thread(call.tid);
    }
    let mut groups: Vec<BlockingGroup> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.on_loop_thread
            .cmp(&a.on_loop_thread)
            .then_with(|| b.total_ns.cmp(&a.total_ns))
            .then_with(|| a.syscall.cmp(&b.syscall))
            .then_with(|| a.target.cmp(&b.target))
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{BlockingCall, FdKind, Frame, FrameKind, TargetInfo};

    fn frame(name: &str) -> Frame {
        Frame {
            function: name.into(),
            file: None,
            line: None,
            column: None,
            module: None,
            kind: FrameKind::Native,
        }
    }

    fn call(nr: u32, stack: u32, target: Option<&str>, duration_ns: u64) -> BlockingCall {
        BlockingCall {
            pid: 1,
            tid: 2,
            nr,
            start_ns: 0,
            duration_ns,
            ret: 0,
            arg0: 3,
            fd: target.map(|_| 3),
            target: target.map(str::to_string),
            fd_kind: FdKind::Pipe,
            blocked_ns: duration_ns,
            uninterruptible: false,
            stack,
            task: None,
            gil: None,
        }
    }

    #[test]
    fn groups_by_syscall_stack_and_target() {
        let trace = Trace {
            blocking: vec![
                call(0, 0, Some("pipe"), 20),
                call(0, 0, Some("pipe"), 30),
                call(0, 1, Some("pipe"), 100),
                call(230, 0, None, 40),
            ],
            stacks: vec![vec![frame("a")], vec![frame("b")]],
            ..Trace::empty(TargetInfo {
                pid: 1,
                comm: "t".into(),
                cmdline: vec![],
            })
        };
        let groups = groups(&trace);
        assert_eq!(groups.len(), 3);
        assert_eq!((groups[0].count, groups[0].total_ns), (1, 100));
        assert_eq!(groups[0].stack[0].function, "b");
        assert_eq!(
            (groups[1].count, groups[1].total_ns, groups[1].max_ns),
            (2, 50, 30)
        );
        assert_eq!(groups[2].syscall, "clock_nanosleep");
        assert_eq!(calls(&trace).len(), 4);
    }
}
