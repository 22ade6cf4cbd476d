//! The kernel's log-linear histograms as Prometheus classic buckets. The
//! bucket bounds are powers of two nanoseconds (1.024 µs … 17.2 s), which
//! are bounds of the kernel's buckets too: every kernel bucket lies wholly
//! under or over each bound, so the conversion loses nothing.

use tracer_common::hist::bucket_bounds;

/// Powers of two nanoseconds from 2^10 (1.024 µs) to 2^34 (17.2 s).
const FIRST_SHIFT: u32 = 10;
const LAST_SHIFT: u32 = 34;

/// A histogram as the exposition format wants it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Classic {
    pub sum_seconds: f64,
    pub count: u64,
    /// (upper bound in seconds, count since the previous bound), +Inf
    /// last: the encoder adds them up.
    pub buckets: Vec<(f64, u64)>,
}

/// `hist` (see `tracer_common::hist`) with the sum of what it counted.
pub fn classic(hist: &[u64], sum_ns: u64) -> Classic {
    let mut buckets = Vec::with_capacity((LAST_SHIFT - FIRST_SHIFT + 2) as usize);
    let mut next = 0;
    for shift in FIRST_SHIFT..=LAST_SHIFT {
        let bound = 1u64 << shift;
        let mut within = 0;
        while next < hist.len() && bucket_bounds(next).1 <= bound {
            within += hist[next];
            next += 1;
        }
        buckets.push((bound as f64 / 1e9, within));
    }
    let count = hist.iter().sum();
    buckets.push((f64::INFINITY, hist[next.min(hist.len())..].iter().sum()));
    Classic {
        sum_seconds: sum_ns as f64 / 1e9,
        count,
        buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::hist::{HIST_BUCKETS, bucket};

    #[test]
    fn kernel_bounds_fall_on_powers_of_two() {
        for shift in FIRST_SHIFT..=LAST_SHIFT {
            let b = bucket(1 << shift);
            assert_eq!(bucket_bounds(b).0, 1 << shift, "2^{shift}");
        }
    }

    #[test]
    fn cumulative_counts_at_each_bound() {
        let mut hist = [0u64; HIST_BUCKETS];
        // 3 iterations of 500 µs, 2 of 30 ms, 1 of 100 s (past every bound).
        hist[bucket(500_000)] += 3;
        hist[bucket(30_000_000)] += 2;
        hist[bucket(100_000_000_000)] += 1;
        let sum = 3 * 500_000 + 2 * 30_000_000 + 100_000_000_000;
        let classic = classic(&hist, sum);
        assert_eq!(classic.count, 6);
        assert!((classic.sum_seconds - 100.0615).abs() < 1e-9);
        // Cumulative counts, as a scrape shows them.
        let at = |seconds: f64| {
            classic
                .buckets
                .iter()
                .take_while(|(le, _)| *le < seconds * 1.001)
                .map(|(_, n)| *n)
                .sum::<u64>()
        };
        // 2^19 ns = 524 µs holds the 500 µs ones; 2^25 ns = 33.5 ms the 30 ms.
        assert_eq!(at(0.000_262_144), 0);
        assert_eq!(at(0.000_524_288), 3);
        assert_eq!(at(0.016_777_216), 3);
        assert_eq!(at(0.033_554_432), 5);
        assert_eq!(at(17.179_869_184), 5);
        assert_eq!(classic.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(classic.buckets.len(), 26);
    }
}
