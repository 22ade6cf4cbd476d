//! The last 10 s of each event loop: the kernel's cumulative loop
//! statistics, read once a second, less the reading of 10 s before. The
//! result is a [`LoopThread`] per loop, as a trace holds, so that the
//! report's own loop rows (busy share, lag percentiles) describe the window.

use std::collections::{HashMap, VecDeque};

use tracer_common::LoopStats;

use crate::trace::LoopThread;

/// How far back `tracer top`'s figures reach.
pub const WINDOW_NS: u64 = 10_000_000_000;

/// Readings come a second apart, give or take the recording loop's other
/// work: a reading this much older than the window still starts it.
const SLACK_NS: u64 = 500_000_000;

struct Reading {
    at_ns: u64,
    loops: HashMap<u32, LoopStats>,
}

#[derive(Default)]
pub struct LoopHistory {
    /// Oldest first; the first is the window's base.
    readings: VecDeque<Reading>,
}

impl LoopHistory {
    /// A reading taken at `at_ns` (since the recording began).
    pub fn add(&mut self, at_ns: u64, loops: impl IntoIterator<Item = (u32, LoopStats)>) {
        self.readings.push_back(Reading {
            at_ns,
            loops: loops.into_iter().collect(),
        });
        // The base is the oldest reading at most a window old (give or
        // take half the second between readings).
        let start = at_ns.saturating_sub(WINDOW_NS + SLACK_NS);
        while self.readings.len() > 1 && self.readings.front().is_some_and(|r| r.at_ns < start) {
            self.readings.pop_front();
        }
    }

    /// The window's span: from the base to the newest reading (from the
    /// start of the recording while it is younger than a window).
    pub fn span_ns(&self) -> u64 {
        match (self.readings.front(), self.readings.back()) {
            (Some(first), Some(last)) if self.readings.len() > 1 => last.at_ns - first.at_ns,
            (_, Some(last)) => last.at_ns,
            _ => 0,
        }
    }

    /// What each loop did in the window; `pid_of` names a thread's process.
    /// A loop seen for the first time in the window counts from zero.
    pub fn window(&self, pid_of: impl Fn(u32) -> u32) -> Vec<LoopThread> {
        let Some(last) = self.readings.back() else {
            return Vec::new();
        };
        let base = self.readings.front().filter(|_| self.readings.len() > 1);
        let mut loops: Vec<LoopThread> = last
            .loops
            .iter()
            .map(|(&tid, now)| {
                let before = base.and_then(|b| b.loops.get(&tid));
                delta(tid, pid_of(tid), now, before)
            })
            .filter(|l| l.iterations > 0)
            .collect();
        loops.sort_by_key(|l| l.tid);
        loops
    }
}

fn delta(tid: u32, pid: u32, now: &LoopStats, before: Option<&LoopStats>) -> LoopThread {
    let zero = LoopStats {
        iterations: 0,
        busy_ns: 0,
        idle_ns: 0,
        max_busy_ns: 0,
        hist: [0; tracer_common::hist::HIST_BUCKETS],
    };
    let before = before.unwrap_or(&zero);
    let hist: Vec<u64> = now
        .hist
        .iter()
        .zip(before.hist.iter())
        .map(|(n, b)| n.saturating_sub(*b))
        .collect();
    // The longest iteration of the window: the kernel's maximum if it rose
    // in the window, else the top of the highest bucket counted (the
    // longest iteration is no longer than that, and no longer than the
    // maximum of the whole recording).
    let max_busy_ns = if now.max_busy_ns > before.max_busy_ns {
        now.max_busy_ns
    } else {
        hist.iter()
            .rposition(|&n| n > 0)
            .map_or(0, |b| tracer_common::hist::bucket_bounds(b).1)
            .min(now.max_busy_ns)
    };
    LoopThread {
        pid,
        tid,
        iterations: now.iterations.saturating_sub(before.iterations),
        busy_ns: now.busy_ns.saturating_sub(before.busy_ns),
        idle_ns: now.idle_ns.saturating_sub(before.idle_ns),
        max_busy_ns,
        hist,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::hist::{HIST_BUCKETS, bucket};

    /// Cumulative statistics after `iterations` (each `busy_ns` long).
    fn stats(iterations: &[(u64, u64)], idle_ns: u64) -> LoopStats {
        let mut hist = [0; HIST_BUCKETS];
        let mut busy = 0;
        let mut count = 0;
        let mut max = 0;
        for &(n, ns) in iterations {
            hist[bucket(ns)] += n;
            busy += n * ns;
            count += n;
            max = max.max(ns);
        }
        LoopStats {
            iterations: count,
            busy_ns: busy,
            idle_ns,
            max_busy_ns: max,
            hist,
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn the_window_is_the_last_ten_seconds() {
        let mut history = LoopHistory::default();
        // A 500 ms stall at 2 s, then only 1 ms iterations.
        history.add(0, [(7, stats(&[], 0))]);
        history.add(3 * S, [(7, stats(&[(100, 1_000_000), (1, S / 2)], 2 * S))]);
        let early = history.window(|_| 70);
        assert_eq!(history.span_ns(), 3 * S);
        assert_eq!(early[0].iterations, 101);
        assert_eq!(early[0].max_busy_ns, S / 2);
        assert_eq!(early[0].pid, 70);
        for second in 4..=13 {
            let n = 100 + 1000 * (second - 3);
            history.add(
                second * S,
                [(7, stats(&[(n, 1_000_000), (1, S / 2)], second * S / 2))],
            );
        }
        assert_eq!(history.span_ns(), 10 * S);
        let late = history.window(|_| 70);
        // 3 s .. 13 s: 10,000 iterations of 1 ms, no stall any more.
        assert_eq!(late[0].iterations, 10_000);
        assert_eq!(late[0].busy_ns, 10 * S);
        assert_eq!(late[0].idle_ns, 9 * S / 2);
        let (low, high) = tracer_common::hist::bucket_bounds(bucket(1_000_000));
        assert!(
            (low..=high).contains(&late[0].max_busy_ns),
            "max {} not in the 1 ms bucket",
            late[0].max_busy_ns
        );
        assert_eq!(late[0].hist.iter().sum::<u64>(), 10_000);
    }

    #[test]
    fn loops_idle_in_the_window_are_left_out() {
        let mut history = LoopHistory::default();
        history.add(0, [(7, stats(&[(5, 1_000)], 0)), (8, stats(&[], 0))]);
        history.add(
            S,
            [(7, stats(&[(5, 1_000)], S)), (8, stats(&[(2, 1_000)], 0))],
        );
        let loops = history.window(|tid| tid);
        assert_eq!(loops.len(), 1);
        assert_eq!((loops[0].tid, loops[0].iterations), (8, 2));
    }
}
