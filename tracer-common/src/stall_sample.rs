//! When a loop thread's long iteration gets a CPU sample. The kernel asks at
//! every timer interrupt that finds the thread on CPU (the scheduler tick of
//! a busy CPU among them), so this decides: the iteration must have run the
//! given time, and samples are at least [`STALL_SAMPLE_GAP_NS`] apart
//! however many timers fire.

use crate::ThreadState;

pub const STALL_SAMPLE_GAP_NS: u64 = 1_000_000;

impl ThreadState {
    /// Whether a stall sample is due at `now`, for an iteration that must
    /// have run `after` ns; notes it if so.
    pub fn take_stall_sample(&mut self, now: u64, after: u64) -> bool {
        let start = self.iter_start_ns;
        if start == 0 || now.saturating_sub(start) < after {
            return false;
        }
        // The last sample may belong to an earlier iteration: it still
        // counts, the gap is about the sampling rate.
        if now.saturating_sub(self.stall_sampled_ns) < STALL_SAMPLE_GAP_NS {
            return false;
        }
        self.stall_sampled_ns = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 5_000_000_000;
    const AFTER: u64 = 5_000_000;

    fn in_iteration_since(start: u64) -> ThreadState {
        ThreadState {
            iter_start_ns: start,
            ..ThreadState::default()
        }
    }

    #[test]
    fn none_outside_an_iteration_or_before_it_ran_long() {
        let mut idle = ThreadState::default();
        assert!(!idle.take_stall_sample(T0, AFTER));
        let mut state = in_iteration_since(T0);
        assert!(!state.take_stall_sample(T0 + AFTER - 1, AFTER));
        assert!(state.take_stall_sample(T0 + AFTER, AFTER));
    }

    #[test]
    fn timers_firing_in_a_burst_give_one_sample_per_gap() {
        let mut state = in_iteration_since(T0);
        // A timer every 100 µs from 5 ms to 25 ms into the iteration.
        let taken = (0..200)
            .filter(|i| state.take_stall_sample(T0 + AFTER + i * 100_000, AFTER))
            .count();
        assert_eq!(taken, 20);
    }

    #[test]
    fn ticks_slower_than_the_gap_are_all_taken() {
        let mut state = in_iteration_since(T0);
        // A 250 Hz tick from 6 ms to 46 ms into the iteration.
        let taken = (0..10)
            .filter(|i| state.take_stall_sample(T0 + 6_000_000 + i * 4_000_000, AFTER))
            .count();
        assert_eq!(taken, 10);
    }
}
