//! Lean mode's budget of sleep stacks. A loop thread's stack is captured
//! (~12 µs) as it goes to sleep, before anyone knows whether the sleep will
//! be long, so captures are rate-limited per thread: on average one per
//! [`CAPTURE_GAP_NS`], in bursts of up to [`CAPTURE_BURST`] (a callback that
//! starts a process sleeps several times in a row).

use crate::ThreadState;

pub const CAPTURE_GAP_NS: u64 = 10_000_000;
pub const CAPTURE_BURST: u64 = 8;

impl ThreadState {
    /// Whether a sleep beginning at `now` may have its stack captured. A
    /// token bucket kept as the time the next token is due (the generic
    /// cell rate algorithm): one field, no division.
    pub fn take_sleep_capture(&mut self, now: u64) -> bool {
        let due = self.capture_due_ns.max(now);
        if due > now + (CAPTURE_BURST - 1) * CAPTURE_GAP_NS {
            return false;
        }
        self.capture_due_ns = due + CAPTURE_GAP_NS;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 5_000_000_000;

    #[test]
    fn a_burst_then_one_per_gap() {
        let mut state = ThreadState::default();
        let taken = (0..20).filter(|_| state.take_sleep_capture(T0)).count();
        assert_eq!(taken, CAPTURE_BURST as usize);
        // Just before the next token is due: none; at it: one, then none.
        assert!(!state.take_sleep_capture(T0 + CAPTURE_GAP_NS - 1));
        assert!(state.take_sleep_capture(T0 + CAPTURE_GAP_NS));
        assert!(!state.take_sleep_capture(T0 + CAPTURE_GAP_NS));
    }

    #[test]
    fn steady_sleeps_get_one_capture_per_gap() {
        let mut state = ThreadState::default();
        // A sleep every millisecond for one second.
        let taken = (0..1000)
            .filter(|ms| state.take_sleep_capture(T0 + ms * 1_000_000))
            .count();
        // The burst, then one every 10 ms of the remaining ~990 ms.
        let expected = CAPTURE_BURST + 999 * 1_000_000 / CAPTURE_GAP_NS;
        assert!(
            (taken as u64).abs_diff(expected) <= 1,
            "{taken} vs {expected}"
        );
    }

    #[test]
    fn the_bucket_refills_while_idle() {
        let mut state = ThreadState::default();
        while state.take_sleep_capture(T0) {}
        let later = T0 + 60 * CAPTURE_GAP_NS;
        let taken = (0..20).filter(|_| state.take_sleep_capture(later)).count();
        assert_eq!(taken, CAPTURE_BURST as usize);
    }
}
