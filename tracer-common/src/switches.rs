//! A thread's time on and off CPU from the scheduler's switches, on its
//! [`ThreadState`]. Pure arithmetic, unit-tested here; `tracer-ebpf/src/
//! sched.rs` calls it at each switch and does the map work around it.
//!
//! This VM's kernel now and then switches a thread back in without a
//! `sched_switch` event (ftrace sees none either). Totals therefore come
//! from the scheduler's own count of the thread's CPU time
//! (`se.sum_exec_runtime`), and a thread found running while its state says
//! it is off CPU gets the missing switch placed by that count.

use crate::{OFFCPU_RUNNABLE, OFFCPU_UNINTERRUPTIBLE, SYSCALL_UNINTERRUPTIBLE, ThreadState};

/// A span off CPU that ended: asleep, then runnable and waiting for a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffCpu {
    pub asleep_ns: u64,
    pub waited_ns: u64,
}

impl ThreadState {
    /// On-CPU time the thread's total does not hold yet, given the
    /// scheduler's count of its CPU time now (`kernel::runtime_ns`).
    pub fn unaccounted_oncpu_ns(&self, runtime_ns: u64) -> u64 {
        runtime_ns.saturating_sub(self.runtime_base_ns + self.oncpu_total_ns)
    }

    /// The thread is found running at `now`: if it went off CPU and its
    /// switch back in went unreported, when it came back, by the
    /// scheduler's count of its CPU time since (`runtime_ns`, read only
    /// then).
    pub fn unreported_switch_in(&self, now: u64, runtime_ns: impl FnOnce() -> u64) -> Option<u64> {
        if self.offcpu_since_ns == 0 {
            return None;
        }
        let ran = self.unaccounted_oncpu_ns(runtime_ns());
        Some(now.saturating_sub(ran).max(self.offcpu_since_ns))
    }

    /// The thread is on CPU again from `now`. Its span off CPU, if it was
    /// off, goes to the iteration and to the syscall in progress; returned
    /// for what else counts it.
    pub fn switched_in(&mut self, now: u64) -> Option<OffCpu> {
        let since = self.offcpu_since_ns;
        self.offcpu_since_ns = 0;
        self.oncpu_since_ns = now;
        if since == 0 {
            return None;
        }
        // Preempted: all of it was waiting for a CPU. Asleep: until the
        // wake-up it slept, after it waited.
        let woke = if self.offcpu_state == OFFCPU_RUNNABLE {
            since
        } else if self.wakeup_ns >= since && self.wakeup_ns <= now {
            self.wakeup_ns
        } else {
            now
        };
        let off = OffCpu {
            asleep_ns: woke.saturating_sub(since),
            waited_ns: now.saturating_sub(woke),
        };
        self.iteration_switched_in(off.asleep_ns, off.waited_ns);
        if self.syscall_start_ns != 0 {
            self.syscall_blocked_ns += off.asleep_ns;
            if self.offcpu_state == OFFCPU_UNINTERRUPTIBLE {
                self.syscall_flags |= u64::from(SYSCALL_UNINTERRUPTIBLE);
            }
        }
        self.runqueue_total_ns += off.waited_ns;
        Some(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OFFCPU_SLEEPING;

    const MS: u64 = 1_000_000;

    #[test]
    fn unaccounted_oncpu_time_is_the_scheduler_count_past_the_total() {
        let state = ThreadState {
            runtime_base_ns: 5_000,
            oncpu_total_ns: 1_200,
            ..ThreadState::default()
        };
        assert_eq!(state.unaccounted_oncpu_ns(6_500), 300);
        // A count read stale (as of the last tick) adds nothing, not a wrap.
        assert_eq!(state.unaccounted_oncpu_ns(6_000), 0);
    }

    #[test]
    fn an_unreported_switch_in_is_placed_by_the_cpu_time_run_since() {
        let mut state = ThreadState {
            oncpu_total_ns: 40 * MS,
            ..ThreadState::default()
        };
        // Running as far as the events tell: nothing to place.
        assert_eq!(
            state.unreported_switch_in(500 * MS, || unreachable!()),
            None
        );
        // Off CPU since 100 ms; found running at 500 ms after 3 ms on CPU.
        state.offcpu_since_ns = 100 * MS;
        assert_eq!(
            state.unreported_switch_in(500 * MS, || 43 * MS),
            Some(497 * MS)
        );
        // A count ahead of the clock cannot place it before it went off.
        assert_eq!(
            state.unreported_switch_in(500 * MS, || 900 * MS),
            Some(100 * MS)
        );
    }

    #[test]
    fn a_sleep_in_a_syscall_splits_at_the_wake_up() {
        let mut state = ThreadState {
            iter_start_ns: 50 * MS,
            syscall_start_ns: 90 * MS,
            offcpu_since_ns: 100 * MS,
            offcpu_state: OFFCPU_UNINTERRUPTIBLE,
            wakeup_ns: 400 * MS,
            ..ThreadState::default()
        };
        let off = state.switched_in(401 * MS);
        let expected = OffCpu {
            asleep_ns: 300 * MS,
            waited_ns: MS,
        };
        assert_eq!(off, Some(expected));
        assert_eq!(state.syscall_blocked_ns, 300 * MS);
        assert_eq!(state.syscall_flags, u64::from(SYSCALL_UNINTERRUPTIBLE));
        assert_eq!(
            (state.iter_blocked_ns, state.iter_runqueue_ns),
            (300 * MS, MS)
        );
        assert_eq!((state.offcpu_since_ns, state.oncpu_since_ns), (0, 401 * MS));
        // Already on CPU: nothing more.
        assert_eq!(state.switched_in(402 * MS), None);
    }

    #[test]
    fn a_preempted_thread_only_waited() {
        let mut state = ThreadState {
            offcpu_since_ns: 10 * MS,
            offcpu_state: OFFCPU_RUNNABLE,
            ..ThreadState::default()
        };
        let off = state.switched_in(14 * MS).unwrap();
        assert_eq!((off.asleep_ns, off.waited_ns), (0, 4 * MS));
        assert_eq!(state.runqueue_total_ns, 4 * MS);
        // Asleep without a wake-up seen: all of it asleep.
        state.offcpu_since_ns = 20 * MS;
        state.offcpu_state = OFFCPU_SLEEPING;
        let off = state.switched_in(30 * MS).unwrap();
        assert_eq!((off.asleep_ns, off.waited_ns), (10 * MS, 0));
    }
}
