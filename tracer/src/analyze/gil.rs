//! The GIL: which threads waited for it, how long, and which thread held it
//! meanwhile, and where that thread was (the code its CPU samples taken
//! during the waits share).

use std::collections::BTreeMap;

use super::loops::{dominant_path, thread_name};
use crate::{
    duration::format_ns,
    report::model::{Cause, CauseKind, GilHolderRow, GilWaitRow, ThreadRef},
    trace::{BlockingCall, Frame, Trace},
};

/// A GIL wait: who waited, when, how long, and who held the GIL.
struct Wait {
    tid: u32,
    start_ns: u64,
    duration_ns: u64,
    count: u64,
    holder: Option<u32>,
}

/// Every GIL wait streamed: the calls kept one by one, and the sums of the
/// others (as their first call, with their total time asleep).
fn waits(trace: &Trace) -> impl Iterator<Item = Wait> + '_ {
    let wait = |call: &BlockingCall, duration_ns: u64, count: u64| {
        call.gil.map(|gil| Wait {
            tid: call.tid,
            start_ns: call.start_ns,
            duration_ns,
            count,
            holder: gil.holder_tid,
        })
    };
    let kept = trace
        .blocking
        .iter()
        .filter_map(move |c| wait(c, c.duration_ns, 1));
    let summed = trace
        .call_groups
        .iter()
        .filter_map(move |g| wait(&g.first, g.offcpu_ns, g.offcpu_count));
    kept.chain(summed)
}

/// The GIL waits of thread `tid` inside `window`: time by holder.
pub fn waited_in(trace: &Trace, tid: u32, window: (u64, u64)) -> BTreeMap<Option<u32>, u64> {
    let mut by_holder = BTreeMap::new();
    for wait in waits(trace).filter(|w| w.tid == tid) {
        let end = wait.start_ns + wait.duration_ns;
        let shared = end
            .min(window.1)
            .saturating_sub(wait.start_ns.max(window.0));
        if shared > 0 {
            *by_holder.entry(wait.holder).or_insert(0) += shared;
        }
    }
    by_holder
}

/// The holder that held the GIL longest in `by_holder` (None: not named).
pub fn main_holder(by_holder: &BTreeMap<Option<u32>, u64>) -> Option<u32> {
    by_holder
        .iter()
        .max_by_key(|(holder, ns)| (**ns, holder.is_some()))
        .and_then(|(holder, _)| *holder)
}

/// When thread `tid` waited for the GIL while `holder` held it.
fn waiter_windows(trace: &Trace, tid: u32, holder: u32) -> Vec<(u64, u64)> {
    waits(trace)
        .filter(|w| w.tid == tid && w.holder == Some(holder))
        .map(|w| (w.start_ns, w.start_ns + w.duration_ns))
        .collect()
}

/// Where thread `holder` was during `windows`: the call path most of its
/// samples then share.
pub fn holder_stack(trace: &Trace, holder: u32, windows: &[(u64, u64)]) -> Vec<Frame> {
    let stacks: Vec<&Vec<Frame>> = trace
        .samples
        .iter()
        .filter(|s| s.tid == holder)
        .filter(|s| windows.iter().any(|w| w.0 <= s.time_ns && s.time_ns <= w.1))
        .filter_map(|s| trace.stacks.get(s.stack as usize))
        .collect();
    dominant_path(&stacks)
}

/// Each thread that waited for the GIL, most time first, with the threads
/// that held it meanwhile.
pub fn rows(trace: &Trace) -> Vec<GilWaitRow> {
    // waiter → holder → (ns, count, windows)
    type Holders = BTreeMap<Option<u32>, (u64, u64, Vec<(u64, u64)>)>;
    let mut by_waiter: BTreeMap<u32, Holders> = BTreeMap::new();
    for wait in waits(trace) {
        let entry = by_waiter
            .entry(wait.tid)
            .or_default()
            .entry(wait.holder)
            .or_default();
        entry.0 += wait.duration_ns;
        entry.1 += wait.count;
        entry
            .2
            .push((wait.start_ns, wait.start_ns + wait.duration_ns));
    }
    let mut rows: Vec<GilWaitRow> = by_waiter
        .into_iter()
        .map(|(tid, holders)| {
            let mut holders: Vec<GilHolderRow> = holders
                .into_iter()
                .map(|(holder, (total_ns, count, windows))| GilHolderRow {
                    tid: holder,
                    comm: holder.map(|h| thread_name(trace, h)),
                    total_ns,
                    count,
                    stack: holder.map_or_else(Vec::new, |h| holder_stack(trace, h, &windows)),
                })
                .collect();
            holders.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.tid.cmp(&b.tid)));
            GilWaitRow {
                tid,
                comm: thread_name(trace, tid),
                total_ns: holders.iter().map(|h| h.total_ns).sum(),
                count: holders.iter().map(|h| h.count).sum(),
                holders,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.tid.cmp(&b.tid)));
    rows
}

fn thread_ref(trace: &Trace, tid: u32) -> ThreadRef {
    ThreadRef {
        tid,
        comm: thread_name(trace, tid),
    }
}

/// A stall mostly spent waiting for the GIL (`by_holder`, in `window`): the
/// thread that held it, and where that thread was.
pub fn stall_cause(
    trace: &Trace,
    tid: u32,
    by_holder: &BTreeMap<Option<u32>, u64>,
    window: (u64, u64),
) -> Cause {
    let waited: u64 = by_holder.values().sum();
    let holder = main_holder(by_holder);
    let held_by = match holder {
        Some(tid) => format!(", held by thread {tid} ({})", thread_name(trace, tid)),
        None => String::new(),
    };
    // A short stall may have no sample of the holder: then where it was
    // whenever the GIL was at stake for the loop thread will do.
    let stack = |holder: u32| {
        let during = holder_stack(trace, holder, &[window]);
        if during.is_empty() {
            holder_stack(trace, holder, &waiter_windows(trace, tid, holder))
        } else {
            during
        }
    };
    Cause {
        syscall: Some("futex".to_string()),
        stack: holder.map_or_else(Vec::new, stack),
        gil_holder: holder.map(|h| thread_ref(trace, h)),
        description: format!("waited {} for the GIL{held_by}", format_ns(waited)),
        ..Cause::empty(CauseKind::Gil)
    }
}

/// The GIL part of a loop thread's row: its waits for the GIL (inside its
/// iterations: a loop thread takes the GIL back as its wait for work ends),
/// and the thread that held it most of that time.
pub fn loop_share(trace: &Trace, tid: u32) -> (u64, Option<ThreadRef>) {
    let by_holder = waited_in(trace, tid, (0, u64::MAX));
    let holder = main_holder(&by_holder).map(|h| thread_ref(trace, h));
    (by_holder.values().sum(), holder)
}
