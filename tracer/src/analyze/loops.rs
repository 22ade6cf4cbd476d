//! Event loops: per-thread utilisation and lag, and every stall with its
//! cause — the blocking call inside it (with its stack), or the code that
//! held the CPU (from the samples taken during it), or the run queue.

use std::collections::HashMap;

use super::percentile::percentile;
use crate::{
    duration::format_ns,
    report::model::{Cause, CauseKind, LoopRow, StallGroup, StallRow},
    syscalls,
    trace::{BlockingCall, Frame, FrameKind, StallRecord, Trace},
};

pub fn loop_rows(trace: &Trace) -> Vec<LoopRow> {
    let mut rows: Vec<LoopRow> = trace
        .loops
        .iter()
        .filter(|l| l.iterations > 0)
        .map(|l| {
            let wall = l.busy_ns + l.idle_ns;
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
            }
        })
        .collect();
    rows.sort_by(|a, b| b.busy_ns.cmp(&a.busy_ns).then(a.tid.cmp(&b.tid)));
    rows
}

fn thread_name(trace: &Trace, tid: u32) -> String {
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

fn cause(trace: &Trace, stall: &StallRecord) -> Cause {
    let window = (stall.start_ns, stall.start_ns + stall.duration_ns);
    let half = stall.duration_ns / 2;
    let kind = if stall.blocked_ns >= half {
        CauseKind::Syscall
    } else if stall.oncpu_ns >= half {
        CauseKind::Cpu
    } else if stall.runqueue_ns >= half {
        CauseKind::Runqueue
    } else {
        CauseKind::Mixed
    };
    // The blocking call that covers most of the stall, if one was streamed.
    let call = trace
        .blocking
        .iter()
        .filter(|c| {
            c.tid == stall.tid && c.duration_ns >= trace.threshold_ns.min(stall.duration_ns / 4)
        })
        .map(|c| (overlap(window, (c.start_ns, c.start_ns + c.duration_ns)), c))
        .filter(|(shared, _)| *shared > 0)
        .max_by_key(|(shared, _)| *shared);
    match (kind, call) {
        (CauseKind::Syscall | CauseKind::Mixed, Some((shared, call))) => {
            from_call(trace, stall, kind, call, shared)
        }
        (CauseKind::Syscall, None) => from_summary(stall, kind),
        (CauseKind::Runqueue, _) => Cause {
            kind,
            description: format!(
                "waiting for a CPU {} (run queue: the machine is busy)",
                format_ns(stall.runqueue_ns)
            ),
            ..Cause::empty(kind)
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
    let mut description = format!("blocked {} in {syscall}{on}", format_ns(shared));
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
        description,
    }
}

/// A blocked stall with no streamed call (many short calls, or the call
/// ended after the stall): the kernel's summary of its longest syscall.
fn from_summary(stall: &StallRecord, kind: CauseKind) -> Cause {
    let Some(longest) = &stall.longest else {
        return Cause {
            description: format!("blocked {} (not in a syscall)", format_ns(stall.blocked_ns)),
            ..Cause::empty(kind)
        };
    };
    let syscall = syscalls::name(longest.nr);
    let on = longest
        .target
        .as_deref()
        .map(|t| format!(" on {t}"))
        .unwrap_or_default();
    Cause {
        kind,
        syscall: Some(syscall.clone()),
        fd: longest.fd,
        target: longest.target.clone(),
        nested_loop: stall.nested_loop,
        stack: Vec::new(),
        description: format!(
            "blocked {} in syscalls, longest {syscall}{on} {}",
            format_ns(stall.blocked_ns),
            format_ns(longest.duration_ns)
        ),
    }
}

/// The code that ran during the stall: what all its samples have in common
/// (the callback that held the CPU), or the one sample.
fn from_samples(trace: &Trace, stall: &StallRecord, kind: CauseKind, window: (u64, u64)) -> Cause {
    let stacks: Vec<&Vec<Frame>> = trace
        .samples
        .iter()
        .filter(|s| s.tid == stall.tid && window.0 <= s.time_ns && s.time_ns <= window.1)
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
        stack: common_callers(&stacks),
        description,
        ..Cause::empty(kind)
    }
}

/// Frames are the same function if name, file and module match (lines
/// differ between samples of the same function).
fn same_function(a: &Frame, b: &Frame) -> bool {
    a.function == b.function && a.file == b.file && a.module == b.module
}

/// The outermost frames all stacks share, innermost first (stacks are
/// innermost first, so this compares from the end): the code that was
/// running through every sample. Where samples have Python frames, only
/// those count (samples caught in native code with no Python frame say
/// nothing about which callback ran).
pub fn common_callers(stacks: &[&Vec<Frame>]) -> Vec<Frame> {
    let python = stacks
        .iter()
        .any(|s| s.iter().any(|f| f.kind == FrameKind::Python));
    let wanted = |f: &Frame| {
        if python {
            f.kind == FrameKind::Python
        } else {
            f.kind == FrameKind::Native
        }
    };
    let mut views = stacks
        .iter()
        .map(|s| {
            s.iter()
                .filter(|f| wanted(f))
                .cloned()
                .collect::<Vec<Frame>>()
        })
        .filter(|v| !v.is_empty());
    let Some(mut common) = views.next() else {
        return Vec::new();
    };
    for other in views {
        let shared = common
            .iter()
            .rev()
            .zip(other.iter().rev())
            .take_while(|(a, b)| same_function(a, b))
            .count();
        common.drain(..common.len() - shared);
    }
    common
}

/// Stalls with the same cause (kind, syscall, code location) as one line.
pub fn groups(rows: &[StallRow]) -> Vec<StallGroup> {
    let mut groups: Vec<StallGroup> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let signature = signature(&row.cause);
        let i = *index.entry(signature).or_insert_with(|| {
            groups.push(StallGroup {
                count: 0,
                total_ns: 0,
                max_ns: 0,
                tids: Vec::new(),
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
    groups.sort_by_key(|g| std::cmp::Reverse(g.total_ns));
    groups
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
