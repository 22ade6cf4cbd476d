//! The budget of sleep stacks. A loop thread's stack is captured (5-12 µs)
//! as it goes to sleep, before anyone knows whether the sleep will be long,
//! so captures are rate-limited per thread: on average one per
//! [`CAPTURE_GAP_NS`], in bursts of up to [`CAPTURE_BURST`] (a callback that
//! starts a process sleeps several times in a row). Uninterruptible sleeps
//! (disk: a cold start reads files and faults pages in by the dozen) have a
//! budget of their own, so that they cannot use up the one of the sleeps a
//! service blocks on (a blocking recv after a cold import kept no stack).

use crate::ThreadState;

pub const CAPTURE_GAP_NS: u64 = 10_000_000;
pub const CAPTURE_BURST: u64 = 8;

impl ThreadState {
    /// Whether a sleep beginning at `now`, `uninterruptible` or not, may
    /// have its stack captured.
    pub fn take_sleep_capture(&mut self, now: u64, uninterruptible: bool) -> bool {
        let due = if uninterruptible {
            &mut self.disk_capture_due_ns
        } else {
            &mut self.capture_due_ns
        };
        take_token(due, now)
    }
}

/// A token bucket kept as the time the next token is due (the generic cell
/// rate algorithm): one field, no division.
fn take_token(due_ns: &mut u64, now: u64) -> bool {
    let due = (*due_ns).max(now);
    if due > now + (CAPTURE_BURST - 1) * CAPTURE_GAP_NS {
        return false;
    }
    *due_ns = due + CAPTURE_GAP_NS;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 5_000_000_000;

    #[test]
    fn a_burst_then_one_per_gap() {
        let mut state = ThreadState::default();
        let taken = (0..20)
            .filter(|_| state.take_sleep_capture(T0, false))
            .count();
        assert_eq!(taken, CAPTURE_BURST as usize);
        // Just before the next token is due: none; at it: one, then none.
        assert!(!state.take_sleep_capture(T0 + CAPTURE_GAP_NS - 1, false));
        assert!(state.take_sleep_capture(T0 + CAPTURE_GAP_NS, false));
        assert!(!state.take_sleep_capture(T0 + CAPTURE_GAP_NS, false));
    }

    #[test]
    fn steady_sleeps_get_one_capture_per_gap() {
        let mut state = ThreadState::default();
        // A sleep every millisecond for one second.
        let taken = (0..1000)
            .filter(|ms| state.take_sleep_capture(T0 + ms * 1_000_000, false))
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
        while state.take_sleep_capture(T0, false) {}
        let later = T0 + 60 * CAPTURE_GAP_NS;
        let taken = (0..20)
            .filter(|_| state.take_sleep_capture(later, false))
            .count();
        assert_eq!(taken, CAPTURE_BURST as usize);
    }

    #[test]
    fn disk_sleeps_cannot_use_up_the_budget_of_the_others() {
        let mut state = ThreadState::default();
        // A cold import: dozens of disk reads and page faults.
        let disk = (0..40)
            .filter(|_| state.take_sleep_capture(T0, true))
            .count();
        assert_eq!(disk, CAPTURE_BURST as usize);
        // Then the recv the iteration blocks on.
        assert!(state.take_sleep_capture(T0 + 1, false));
    }
}
