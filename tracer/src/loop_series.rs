//! The time series of each event loop: the kernel's cumulative loop
//! statistics read at a steady pace, turned into per-window deltas.

use std::collections::HashMap;

use tracer_common::LoopStats;

use crate::trace::LoopWindow;

#[derive(Default)]
pub struct LoopSeries {
    /// Per tid: (time of the last reading, iterations, busy_ns then).
    last: HashMap<u32, (u64, u64, u64)>,
    pub windows: Vec<LoopWindow>,
}

impl LoopSeries {
    /// Adds a reading of the kernel's statistics taken at `now_ns`
    /// (nanoseconds since the start of the recording).
    pub fn read(&mut self, now_ns: u64, stats: &[(u32, LoopStats)]) {
        for (tid, stat) in stats {
            let (since, iterations, busy) = self
                .last
                .insert(*tid, (now_ns, stat.iterations, stat.busy_ns))
                .unwrap_or((0, 0, 0));
            let done = stat.iterations.saturating_sub(iterations);
            if done > 0 {
                self.windows.push(LoopWindow {
                    tid: *tid,
                    start_ns: since,
                    duration_ns: now_ns.saturating_sub(since),
                    iterations: done,
                    busy_ns: stat.busy_ns.saturating_sub(busy),
                });
            }
        }
    }

    /// The windows so far; the next are timed from a new period's start.
    pub fn take_period(&mut self) -> Vec<LoopWindow> {
        for (since, _, _) in self.last.values_mut() {
            *since = 0;
        }
        std::mem::take(&mut self.windows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::hist::HIST_BUCKETS;

    fn stats(iterations: u64, busy_ns: u64) -> LoopStats {
        LoopStats {
            iterations,
            busy_ns,
            idle_ns: 0,
            max_busy_ns: 0,
            hist: [0; HIST_BUCKETS],
        }
    }

    #[test]
    fn windows_are_deltas() {
        let mut series = LoopSeries::default();
        series.read(100, &[(7, stats(10, 1_000))]);
        series.read(200, &[(7, stats(10, 1_000))]);
        series.read(300, &[(7, stats(15, 4_000))]);
        assert_eq!(series.windows.len(), 2);
        assert_eq!(
            (series.windows[0].start_ns, series.windows[0].iterations),
            (0, 10)
        );
        let last = &series.windows[1];
        assert_eq!(
            (
                last.start_ns,
                last.duration_ns,
                last.iterations,
                last.busy_ns
            ),
            (200, 100, 5, 3_000)
        );
    }

    #[test]
    fn a_new_period_starts_at_zero() {
        let mut series = LoopSeries::default();
        series.read(100, &[(7, stats(10, 1_000))]);
        assert_eq!(series.take_period().len(), 1);
        series.read(50, &[(7, stats(12, 1_500))]);
        let window = &series.windows[0];
        assert_eq!(
            (window.start_ns, window.duration_ns, window.iterations),
            (0, 50, 2)
        );
    }
}
