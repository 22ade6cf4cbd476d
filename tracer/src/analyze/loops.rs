//! Event loops: per-thread utilisation and lag, and every stall with its
//! cause — the blocking call inside it (with its stack), or the code that
//! held the CPU (from the samples taken during it), or the run queue.

use std::collections::HashMap;

use super::{gil, percentile::percentile};
use crate::{
    duration::format_ns,
    report::model::{Cause, CauseKind, LoopRow, StallGroup, StallRow},
    syscalls,
    trace::{BlockingCall, Frame, FrameKind, SampleRecord, StallRecord, Trace},
};

pub fn loop_rows(trace: &Trace) -> Vec<LoopRow> {
    let mut rows: Vec<LoopRow> = trace
        .loops
        .iter()
        .filter(|l| l.iterations > 0)
        .map(|l| {
            let wall = l.busy_ns + l.idle_ns;
            let (gil_wait_ns, gil_holder) = gil::loop_share(trace, l.tid);
            let mean = l.busy_ns / l.iterations;
            LoopRow {
                pid: l.pid,
                tid: l.tid,
                comm: thread_name(trace, l.tid),
                iterations: l.iterations,
                busy_ns: l.busy_ns,
                idle_ns: l.idle_ns,
                utilization: if wall == 0 {
                    0.0
                } else {
                    l.busy_ns as f64 / wall as f64
                },
                lag_p50_ns: percentile(&l.hist, 0.50, l.max_busy_ns, mean),
                lag_p99_ns: percentile(&l.hist, 0.99, l.max_busy_ns, mean),
                lag_max_ns: l.max_busy_ns,
                gil_wait_ns,
                gil_holder,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.busy_ns.cmp(&a.busy_ns).then(a.tid.cmp(&b.tid)));
    rows
}

pub fn thread_name(trace: &Trace, tid: u32) -> String {
    trace
        .threads
        .iter()
        .find(|t| t.tid == tid)
        .map(|t| t.comm.clone())
        .unwrap_or_default()
}

/// Every stall with its cause, in time order.
pub fn stalls(trace: &Trace) -> Vec<StallRow> {
    trace
        .stalls
        .iter()
        .map(|stall| StallRow {
            pid: stall.pid,
            tid: stall.tid,
            start_ns: stall.start_ns,
            duration_ns: stall.duration_ns,
            on_cpu_ns: stall.oncpu_ns,
            blocked_ns: stall.blocked_ns,
            runqueue_ns: stall.runqueue_ns,
            cause: cause(trace, stall),
        })
        .collect()
}

/// How much of `[start, end)` two intervals share.
fn overlap(a: (u64, u64), b: (u64, u64)) -> u64 {
    a.1.min(b.1).saturating_sub(a.0.max(b.0))
}

/// Which part of a stall is the majority: asleep, on CPU, or runnable.
pub fn cause_kind(stall: &StallRecord) -> CauseKind {
    let half = stall.duration_ns / 2;
    if stall.blocked_ns >= half {
        CauseKind::Syscall
    } else if stall.oncpu_ns >= half {
        CauseKind::Cpu
    } else if stall.runqueue_ns >= half {
        CauseKind::Runqueue
    } else {
        CauseKind::Mixed
    }
}

/// The cause, with the asyncio Task it ran in (said in its description).
fn cause(trace: &Trace, stall: &StallRecord) -> Cause {
    let mut cause = cause_alone(trace, stall);
    if let Some(task) = &cause.task {
        cause.description.push_str(&super::tasks::describe(task));
    }
    cause
}

/// Whether a stall that waited `gil_ns` for the GIL is a GIL stall: for at
/// least half of it.
pub fn mostly_gil(stall: &StallRecord, gil_ns: u64) -> bool {
    gil_ns >= stall.duration_ns / 2
}

/// How long a call must be to be the one a stall slept in: `--threshold`,
/// or a quarter of the stall if that is less.
pub fn min_covering_call_ns(stall: &StallRecord, threshold_ns: u64) -> u64 {
    threshold_ns.min(stall.duration_ns / 4)
}

fn cause_alone(trace: &Trace, stall: &StallRecord) -> Cause {
    let window = (stall.start_ns, stall.start_ns + stall.duration_ns);
    let gil = gil::waited_in(trace, stall.tid, window);
    if mostly_gil(stall, gil.values().sum()) {
        return gil::stall_cause(trace, stall.tid, &gil, window);
    }
    let kind = cause_kind(stall);
    // The blocking call that covers most of the stall, if one was streamed.
    let call = trace
        .blocking
        .iter()
        .filter(|c| {
            c.tid == stall.tid && c.duration_ns >= min_covering_call_ns(stall, trace.threshold_ns)
        })
        .map(|c| (overlap(window, (c.start_ns, c.start_ns + c.duration_ns)), c))
        .filter(|(shared, _)| *shared > 0)
        .max_by_key(|(shared, _)| *shared);
    match (kind, call) {
        (CauseKind::Syscall | CauseKind::Mixed, Some((shared, call))) => {
            from_call(trace, stall, kind, call, shared)
        }
        (CauseKind::Syscall, None) => from_summary(stall, kind),
        // What the loop ran between its waits for a CPU: the code that
        // would have held the CPU on an idle machine.
        (CauseKind::Runqueue, _) => Cause {
            description: format!(
                "waiting for a CPU {} (run queue: the machine is busy)",
                format_ns(stall.runqueue_ns)
            ),
            ..from_samples(trace, stall, kind, window)
        },
        _ => from_samples(trace, stall, kind, window),
    }
}

fn from_call(
    trace: &Trace,
    stall: &StallRecord,
    kind: CauseKind,
    call: &BlockingCall,
    shared: u64,
) -> Cause {
    let syscall = syscalls::name(call.nr);
    let on = match (&call.target, stall.nested_loop) {
        (_, true) => " on another epoll fd (nested loop)".to_string(),
        (Some(target), false) => format!(" on {target}"),
        (None, false) => String::new(),
    };
    let call_words = if syscall == syscalls::PAGE_FAULT {
        "a page fault"
    } else {
        &syscall
    };
    let mut description = format!("blocked {} in {call_words}{on}", format_ns(shared));
    if kind == CauseKind::Mixed {
        description = format!("on CPU {}, {description}", format_ns(stall.oncpu_ns));
    }
    Cause {
        kind,
        syscall: Some(syscall),
        fd: call.fd,
        target: call.target.clone(),
        nested_loop: stall.nested_loop,
        stack: trace.stack(call.stack),
        task: call.task.clone(),
        description,
        gil_holder: None,
    }
}

/// A blocked stall with no streamed call (many short calls, or the call
/// ended after the stall): the kernel's summary of its longest syscall or
/// page fault. With neither noted, the thread slept outside syscalls all
/// the same: a page fault (or stopped by a signal, which a service is not).
fn from_summary(stall: &StallRecord, kind: CauseKind) -> Cause {
    let Some(longest) = &stall.longest else {
        return Cause {
            description: format!(
                "blocked {} outside syscalls (page faults)",
                format_ns(stall.blocked_ns)
            ),
            ..Cause::empty(kind)
        };
    };
    let syscall = syscalls::name(longest.nr);
    let on = longest
        .target
        .as_deref()
        .map(|t| format!(" on {t}"))
        .unwrap_or_default();
    let spent_in = if syscall == syscalls::PAGE_FAULT {
        "page faults and syscalls"
    } else {
        "syscalls"
    };
    Cause {
        kind,
        syscall: Some(syscall.clone()),
        fd: longest.fd,
        target: longest.target.clone(),
        nested_loop: stall.nested_loop,
        stack: Vec::new(),
        task: None,
        description: format!(
            "blocked {} in {spent_in}, longest {syscall}{on} {}",
            format_ns(stall.blocked_ns),
            format_ns(longest.duration_ns)
        ),
        gil_holder: None,
    }
}

/// The code that ran during the stall: the call path most of its samples
/// share (the callback that held the CPU).
fn from_samples(trace: &Trace, stall: &StallRecord, kind: CauseKind, window: (u64, u64)) -> Cause {
    let samples = stall_samples(trace, stall, window);
    let stacks: Vec<&Vec<Frame>> = samples
        .iter()
        .filter_map(|s| trace.stacks.get(s.stack as usize))
        .collect();
    let description = format!(
        "on CPU {}{}",
        format_ns(stall.oncpu_ns),
        if stacks.is_empty() {
            " (no samples)"
        } else {
            ""
        }
    );
    Cause {
        kind,
        stack: dominant_path(&stacks),
        task: super::tasks::most_samples_in(&samples),
        description,
        ..Cause::empty(kind)
    }
}

/// The samples of the stalled thread taken during the stall.
fn stall_samples<'a>(
    trace: &'a Trace,
    stall: &StallRecord,
    window: (u64, u64),
) -> Vec<&'a SampleRecord> {
    trace
        .samples
        .iter()
        .filter(|s| s.tid == stall.tid && window.0 <= s.time_ns && s.time_ns <= window.1)
        .collect()
}

/// What makes frames the same function: name, file and module (lines
/// differ between samples of the same function).
type FunctionKey<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

fn function_key(frame: &Frame) -> FunctionKey<'_> {
    (
        &frame.function,
        frame.file.as_deref(),
        frame.module.as_deref(),
    )
}

/// The call path that most stacks share, innermost first: from the
/// outermost frame inward, follow the function that more than half of all
/// stacks run through, as deep as one does. A few samples taken outside the
/// hot callback (in the loop's own code before it ran) then cannot hide it.
/// Where samples have Python frames, only those count (samples caught in
/// native code with no Python frame say nothing about which callback ran).
pub fn dominant_path(stacks: &[&Vec<Frame>]) -> Vec<Frame> {
    let python = stacks
        .iter()
        .any(|s| s.iter().any(|f| f.kind == FrameKind::Python));
    let wanted = |kind: FrameKind| {
        if python {
            kind == FrameKind::Python
        } else {
            matches!(kind, FrameKind::Native | FrameKind::Js)
        }
    };
    // Outermost first.
    let views: Vec<Vec<&Frame>> = stacks
        .iter()
        .map(|s| {
            s.iter()
                .rev()
                .filter(|f| wanted(f.kind))
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect();
    let mut on_path: Vec<&Vec<&Frame>> = views.iter().collect();
    let mut path: Vec<Frame> = Vec::new();
    for depth in 0.. {
        let mut counts: HashMap<FunctionKey, (usize, &Frame)> = HashMap::new();
        for frame in on_path.iter().filter_map(|v| v.get(depth)) {
            counts.entry(function_key(frame)).or_insert((0, frame)).0 += 1;
        }
        let Some((key, frame)) = counts
            .into_iter()
            // A strict majority: at most one function has it.
            .filter(|(_, (count, _))| 2 * count > views.len())
            .map(|(key, (_, frame))| (key, frame))
            .next()
        else {
            break;
        };
        on_path.retain(|v| v.get(depth).is_some_and(|f| function_key(f) == key));
        path.push(frame.clone());
    }
    path.reverse();
    path
}

/// Stalls with the same cause (kind, syscall, code location) as one line.
pub fn groups(rows: &[StallRow]) -> Vec<StallGroup> {
    let mut groups = grouped(rows, |row| signature(&row.cause));
    merge_nested_cpu_groups(&mut groups);
    groups.sort_by_key(|g| std::cmp::Reverse(g.total_ns));
    groups
}

/// Stalls with the same `key` as one group, in order of first appearance;
/// each group shows the cause of its longest stall.
pub fn grouped(rows: &[StallRow], key: impl Fn(&StallRow) -> String) -> Vec<StallGroup> {
    let mut groups: Vec<StallGroup> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let i = *index.entry(key(row)).or_insert_with(|| {
            groups.push(StallGroup {
                count: 0,
                total_ns: 0,
                max_ns: 0,
                tids: Vec::new(),
                task: None,
                cause: row.cause.clone(),
            });
            groups.len() - 1
        });
        let group = &mut groups[i];
        group.count += 1;
        group.total_ns += row.duration_ns;
        if row.duration_ns > group.max_ns {
            group.max_ns = row.duration_ns;
            group.cause = row.cause.clone();
        }
        if !group.tids.contains(&row.tid) {
            group.tids.push(row.tid);
        }
    }
    groups
}

/// CPU stalls in one callback whose paths end at different depths (a
/// path goes as deep as most of the stall's samples agree, and a few dozen
/// samples do not always agree on the innermost call) are one group, at the
/// outer of the paths.
fn merge_nested_cpu_groups(groups: &mut Vec<StallGroup>) {
    let mut i = 0;
    while i < groups.len() {
        let outer = (0..groups.len())
            .find(|&j| j != i && cpu_path_encloses(&groups[j].cause, &groups[i].cause));
        let Some(outer) = outer else {
            i += 1;
            continue;
        };
        let inner = groups.remove(i);
        let group = &mut groups[if outer > i { outer - 1 } else { outer }];
        group.count += inner.count;
        group.total_ns += inner.total_ns;
        group.max_ns = group.max_ns.max(inner.max_ns);
        for tid in inner.tids {
            if !group.tids.contains(&tid) {
                group.tids.push(tid);
            }
        }
        i = 0;
    }
}

/// Whether both causes are CPU stalls and `inner`'s path runs through
/// `outer`'s, deeper (stacks are innermost first).
fn cpu_path_encloses(outer: &Cause, inner: &Cause) -> bool {
    outer.kind == CauseKind::Cpu
        && inner.kind == CauseKind::Cpu
        && !outer.stack.is_empty()
        && outer.stack.len() < inner.stack.len()
        && outer
            .stack
            .iter()
            .rev()
            .zip(inner.stack.iter().rev())
            .all(|(o, i)| function_key(o) == function_key(i))
}

fn signature(cause: &Cause) -> String {
    let frames: Vec<String> = cause
        .stack
        .iter()
        .map(|f| format!("{}@{}", f.function, f.file.as_deref().unwrap_or("")))
        .collect();
    format!(
        "{:?}|{}|{}|{}",
        cause.kind,
        cause.syscall.as_deref().unwrap_or(""),
        cause.nested_loop,
        frames.join(";")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::sample::{self, LOOP_TID};

    fn python(function: &str, line: u32) -> Frame {
        Frame {
            function: function.into(),
            file: Some("/srv/app.py".into()),
            line: Some(line),
            column: None,
            module: None,
            kind: FrameKind::Python,
        }
    }

    fn names(stack: &[Frame]) -> Vec<&str> {
        stack.iter().map(|f| f.function.as_str()).collect()
    }

    /// The sample trace with its CPU stall sampled `stacks` (id, count).
    fn cpu_stall_sampled(stacks: Vec<Vec<Frame>>, counts: &[usize]) -> Trace {
        let mut trace = sample::trace();
        let stall = trace.stalls[1].clone();
        trace.samples.clear();
        for (offset, stack) in stacks.into_iter().enumerate() {
            let id = trace.stacks.len() as u32;
            trace.stacks.push(stack);
            for i in 0..counts[offset] {
                trace.samples.push(SampleRecord {
                    pid: LOOP_TID,
                    tid: LOOP_TID,
                    time_ns: stall.start_ns + 1_000_000 * (i as u64 + 1),
                    for_stall: true,
                    stack: id,
                    task: None,
                });
            }
        }
        trace
    }

    #[test]
    fn blocked_stall_names_the_call_its_socket_and_code() {
        let rows = stalls(&sample::trace());
        let cause = &rows[0].cause;
        assert_eq!(cause.kind, CauseKind::Syscall);
        assert_eq!(cause.syscall.as_deref(), Some("recvfrom"));
        assert_eq!(
            cause.description,
            "blocked 300 ms in recvfrom on tcp:127.0.0.1:53412->127.0.0.1:8081 \
             in task 'fetch-user-42' (handle_request), awaited by 'serve' ← 'main'"
        );
        assert!(names(&cause.stack).contains(&"query_upstream"));
    }

    #[test]
    fn cpu_stall_names_the_function_most_samples_ran_in() {
        let hot = vec![
            python("render_report", 56),
            python("handle", 71),
            python("_run_once", 1900),
        ];
        let hot_other_line = vec![
            python("render_report", 55),
            python("handle", 71),
            python("_run_once", 1900),
        ];
        // Taken before the callback began: the loop's own code.
        let loop_code = vec![python("_run_once", 1880)];
        let trace = cpu_stall_sampled(vec![hot, hot_other_line, loop_code], &[5, 4, 3]);
        let cause = &stalls(&trace)[1].cause;
        assert_eq!(cause.kind, CauseKind::Cpu);
        assert_eq!(cause.description, "on CPU 198 ms");
        assert_eq!(
            names(&cause.stack),
            ["render_report", "handle", "_run_once"]
        );
    }

    #[test]
    fn an_even_split_stops_at_the_shared_caller() {
        let a = vec![python("parse", 10), python("handle", 71)];
        let b = vec![python("render", 20), python("handle", 71)];
        let trace = cpu_stall_sampled(vec![a, b], &[3, 3]);
        assert_eq!(names(&stalls(&trace)[1].cause.stack), ["handle"]);
    }

    #[test]
    fn native_frames_count_only_without_python_frames() {
        let frames = |names: &[&str]| -> Vec<Frame> {
            names
                .iter()
                .map(|n| Frame {
                    kind: FrameKind::Native,
                    module: Some("busy".into()),
                    ..python(n, 1)
                })
                .collect()
        };
        let trace = cpu_stall_sampled(
            vec![frames(&["spin", "work", "main"]), frames(&["work", "main"])],
            &[2, 1],
        );
        assert_eq!(
            names(&stalls(&trace)[1].cause.stack),
            ["spin", "work", "main"]
        );
        let mut mixed = frames(&["PyNumber_Add"]);
        mixed.push(python("crunch", 3));
        let trace = cpu_stall_sampled(vec![mixed], &[2]);
        assert_eq!(names(&stalls(&trace)[1].cause.stack), ["crunch"]);
    }

    /// The run-queue share: the next test.
    #[test]
    fn kinds_follow_the_largest_share() {
        let mut trace = sample::trace();
        let stall = &mut trace.stalls[1];
        stall.oncpu_ns = 90_000_000;
        stall.runqueue_ns = 20_000_000;
        stall.blocked_ns = 90_000_000;
        assert_eq!(stalls(&trace)[1].cause.kind, CauseKind::Mixed);
    }

    #[test]
    fn run_queue_stalls_show_the_code_that_waited_for_a_cpu() {
        let mut trace =
            cpu_stall_sampled(vec![vec![python("spin", 3), python("callback", 9)]], &[3]);
        let stall = &mut trace.stalls[1];
        stall.oncpu_ns = 20_000_000;
        stall.runqueue_ns = 150_000_000;
        let cause = &stalls(&trace)[1].cause;
        assert_eq!(cause.kind, CauseKind::Runqueue);
        assert!(cause.description.starts_with("waiting for a CPU 150 ms"));
        assert_eq!(names(&cause.stack), ["spin", "callback"]);
    }

    #[test]
    fn nested_loop_wait_is_named() {
        let mut trace = sample::trace();
        trace.stalls[0].nested_loop = true;
        let cause = &stalls(&trace)[0].cause;
        assert!(cause.nested_loop);
        assert_eq!(
            cause.description,
            "blocked 300 ms in recvfrom on another epoll fd (nested loop) \
             in task 'fetch-user-42' (handle_request), awaited by 'serve' ← 'main'"
        );
    }

    #[test]
    fn cpu_stalls_whose_paths_end_at_different_depths_are_one_group() {
        let trace = sample::trace();
        let mut rows = stalls(&trace);
        let cpu = rows
            .iter()
            .find(|row| row.cause.kind == CauseKind::Cpu)
            .expect("the sample trace's CPU stall")
            .clone();
        // The same callback, with the path one call shorter.
        let mut shallower = cpu.clone();
        shallower.cause.stack.remove(0);
        shallower.duration_ns += 1_000_000;
        rows.push(shallower.clone());
        // A stall with a syscall cause on the deeper path stays apart.
        let mut blocked = cpu.clone();
        blocked.cause.kind = CauseKind::Syscall;
        rows.push(blocked.clone());
        let groups = groups(&rows);
        let cpu_groups: Vec<&StallGroup> = groups
            .iter()
            .filter(|g| g.cause.kind == CauseKind::Cpu)
            .collect();
        assert_eq!(cpu_groups.len(), 1, "{groups:#?}");
        assert_eq!(cpu_groups[0].count, 2);
        assert_eq!(cpu_groups[0].total_ns, 2 * cpu.duration_ns + 1_000_000);
        assert_eq!(
            names(&cpu_groups[0].cause.stack),
            names(&shallower.cause.stack)
        );
        assert!(groups.iter().any(|g| {
            g.cause.kind == CauseKind::Syscall
                && names(&g.cause.stack) == names(&blocked.cause.stack)
        }));
    }

    #[test]
    fn identical_stalls_are_one_group() {
        let mut trace = sample::trace();
        let mut again = trace.stalls[0].clone();
        again.start_ns += 1_000_000;
        again.duration_ns += 5_000_000;
        trace.stalls.push(again);
        let groups = groups(&stalls(&trace));
        assert_eq!(groups.len(), 2, "{groups:#?}");
        assert_eq!(groups[0].count, 2);
        assert_eq!(groups[0].total_ns, 2 * 301_234_567 + 5_000_000);
        assert_eq!(groups[0].max_ns, 306_234_567);
        assert_eq!(groups[1].count, 1);
    }
}
