//! The kernel's statistics are cumulative from attach; a rotated report
//! wants its own period's. Each period's values are the reading at its end
//! less the reading at its start.

use std::collections::HashMap;

use tracer_common::{LoopStats, hist::bucket_bounds};

use crate::{
    probes::{ProbeError, Probes},
    trace::{Drops, RunqueueLatency, ShortOffCpu, SyscallTotals},
};

/// Everything the probes count in maps, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct KernelCounters {
    pub syscalls: Vec<SyscallTotals>,
    /// The per-loop-thread statistics, by tid.
    pub loops: Vec<(u32, LoopStats)>,
    pub runqueue: RunqueueLatency,
    pub offcpu_short: Vec<ShortOffCpu>,
    /// (on-CPU, run-queue) time of the threads alive, by tid.
    pub thread_times: HashMap<u32, (u64, u64)>,
    pub drops: Drops,
}

impl KernelCounters {
    /// Reads the maps; `now_ns` (CLOCK_MONOTONIC) ends a running stint.
    pub fn read(probes: &Probes, now_ns: u64) -> Result<Self, ProbeError> {
        Ok(Self {
            syscalls: probes.syscall_totals()?,
            loops: probes.loop_stats()?,
            runqueue: probes.runqueue()?,
            offcpu_short: probes.offcpu_short()?,
            thread_times: probes.thread_times(now_ns)?,
            drops: probes.drops()?,
        })
    }

    /// What was counted since `earlier` (a reading of the same probes).
    /// Entries with nothing new are left out, as the kernel's readers do.
    pub fn since(&self, earlier: &Self) -> Self {
        let syscalls = self
            .syscalls
            .iter()
            .map(|now| {
                let then = earlier.syscalls.iter().find(|t| t.nr == now.nr);
                let hist = minus_hist(&now.hist, then.map(|t| t.hist.as_slice()));
                SyscallTotals {
                    nr: now.nr,
                    count: now.count.saturating_sub(then.map_or(0, |t| t.count)),
                    errors: now.errors.saturating_sub(then.map_or(0, |t| t.errors)),
                    total_ns: now.total_ns.saturating_sub(then.map_or(0, |t| t.total_ns)),
                    max_ns: max_since(now.max_ns, then.map_or(0, |t| t.max_ns), &hist),
                    hist,
                }
            })
            .filter(|s| s.count > 0)
            .collect();
        let loops = self
            .loops
            .iter()
            .map(|(tid, now)| {
                let then = earlier.loops.iter().find(|(t, _)| t == tid).map(|(_, s)| s);
                let delta = minus_hist(&now.hist, then.map(|t| t.hist.as_slice()));
                let mut hist = now.hist;
                hist.copy_from_slice(&delta);
                let stats = LoopStats {
                    iterations: now
                        .iterations
                        .saturating_sub(then.map_or(0, |t| t.iterations)),
                    busy_ns: now.busy_ns.saturating_sub(then.map_or(0, |t| t.busy_ns)),
                    idle_ns: now.idle_ns.saturating_sub(then.map_or(0, |t| t.idle_ns)),
                    max_busy_ns: max_since(
                        now.max_busy_ns,
                        then.map_or(0, |t| t.max_busy_ns),
                        &delta,
                    ),
                    hist,
                };
                (*tid, stats)
            })
            .collect();
        let runqueue = {
            let (now, then) = (&self.runqueue, &earlier.runqueue);
            let then_hist = (!then.hist.is_empty()).then_some(then.hist.as_slice());
            let hist = minus_hist(&now.hist, then_hist);
            RunqueueLatency {
                count: now.count.saturating_sub(then.count),
                total_ns: now.total_ns.saturating_sub(then.total_ns),
                max_ns: max_since(now.max_ns, then.max_ns, &hist),
                hist,
            }
        };
        let offcpu_short = self
            .offcpu_short
            .iter()
            .map(|now| {
                let then = earlier.offcpu_short.iter().find(|t| t.nr == now.nr);
                ShortOffCpu {
                    nr: now.nr,
                    count: now.count.saturating_sub(then.map_or(0, |t| t.count)),
                    total_ns: now.total_ns.saturating_sub(then.map_or(0, |t| t.total_ns)),
                }
            })
            .filter(|s| s.count > 0)
            .collect();
        let thread_times = self
            .thread_times
            .iter()
            .map(|(tid, &(oncpu, runqueue))| {
                // A thread id reused by a new thread starts again from zero.
                let (was_oncpu, was_runqueue) = earlier
                    .thread_times
                    .get(tid)
                    .filter(|(o, r)| *o <= oncpu && *r <= runqueue)
                    .copied()
                    .unwrap_or((0, 0));
                (*tid, (oncpu - was_oncpu, runqueue - was_runqueue))
            })
            .collect();
        let (now, then) = (&self.drops, &earlier.drops);
        let drops = Drops {
            ringbuf_full: now.ringbuf_full.saturating_sub(then.ringbuf_full),
            thread_map_full: now.thread_map_full.saturating_sub(then.thread_map_full),
            kernel_stacks: now.kernel_stacks.saturating_sub(then.kernel_stacks),
            process_map_full: now.process_map_full.saturating_sub(then.process_map_full),
        };
        Self {
            syscalls,
            loops,
            runqueue,
            offcpu_short,
            thread_times,
            drops,
        }
    }
}

/// `now - then` bucket by bucket (no `then`: all of `now`).
fn minus_hist(now: &[u64], then: Option<&[u64]>) -> Vec<u64> {
    match then {
        Some(then) => now
            .iter()
            .zip(then.iter().chain(std::iter::repeat(&0)))
            .map(|(n, t)| n.saturating_sub(*t))
            .collect(),
        None => now.to_vec(),
    }
}

/// The longest of a period. A maximum that grew was reached in the period;
/// one that did not is bounded by the highest bucket the period filled.
fn max_since(now_max: u64, then_max: u64, hist: &[u64]) -> u64 {
    if now_max > then_max {
        return now_max;
    }
    hist.iter()
        .rposition(|&n| n > 0)
        .map_or(0, |b| (bucket_bounds(b).1 - 1).min(now_max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::hist::{HIST_BUCKETS, bucket};

    fn syscall(count: u64, max_ns: u64, durations: &[u64]) -> SyscallTotals {
        let mut hist = vec![0; HIST_BUCKETS];
        for &d in durations {
            hist[bucket(d)] += 1;
        }
        SyscallTotals {
            nr: 0,
            count,
            errors: 0,
            total_ns: durations.iter().sum(),
            max_ns,
            hist,
        }
    }

    fn loop_stats(iterations: u64, busy_ns: u64, max_busy_ns: u64) -> LoopStats {
        let mut hist = [0; HIST_BUCKETS];
        hist[bucket(busy_ns / iterations.max(1))] = iterations;
        LoopStats {
            iterations,
            busy_ns,
            idle_ns: 3 * busy_ns,
            max_busy_ns,
            hist,
        }
    }

    #[test]
    fn a_period_is_the_difference_of_two_readings() {
        let first = KernelCounters {
            syscalls: vec![syscall(2, 50_000_000, &[50_000_000, 1_000])],
            loops: vec![(7, loop_stats(10, 1_000_000, 300_000))],
            thread_times: HashMap::from([(7, (100, 10)), (8, (500, 0))]),
            drops: Drops {
                ringbuf_full: 3,
                ..Drops::default()
            },
            ..KernelCounters::default()
        };
        let second = KernelCounters {
            syscalls: vec![syscall(
                5,
                50_000_000,
                &[50_000_000, 1_000, 2_000, 2_000, 3_000],
            )],
            loops: vec![
                (7, loop_stats(30, 4_000_000, 300_000)),
                (9, loop_stats(1, 20_000_000, 20_000_000)),
            ],
            // Thread 8 exited and its id went to a new thread.
            thread_times: HashMap::from([(7, (250, 15)), (8, (40, 0))]),
            drops: Drops {
                ringbuf_full: 4,
                ..Drops::default()
            },
            ..KernelCounters::default()
        };
        let period = second.since(&first);
        let calls = &period.syscalls[0];
        assert_eq!((calls.count, calls.total_ns), (3, 7_000));
        // The 50 ms call was before: the period's max is its 3 µs bucket's top.
        assert!((3_000..3_584).contains(&calls.max_ns), "{}", calls.max_ns);
        assert_eq!(calls.hist.iter().sum::<u64>(), 3);
        let (tid, loop7) = &period.loops[0];
        assert_eq!(
            (*tid, loop7.iterations, loop7.busy_ns, loop7.idle_ns),
            (7, 20, 3_000_000, 9_000_000)
        );
        let (tid, loop9) = &period.loops[1];
        assert_eq!(
            (*tid, loop9.iterations, loop9.max_busy_ns),
            (9, 1, 20_000_000)
        );
        assert_eq!(period.thread_times[&7], (150, 5));
        assert_eq!(period.thread_times[&8], (40, 0));
        assert_eq!(period.drops.ringbuf_full, 1);
    }

    #[test]
    fn nothing_new_is_left_out() {
        let reading = KernelCounters {
            syscalls: vec![syscall(2, 10, &[10, 10])],
            ..KernelCounters::default()
        };
        assert!(reading.since(&reading).syscalls.is_empty());
    }
}
