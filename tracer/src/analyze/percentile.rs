//! Percentiles from the kernel's log-linear histograms.

use tracer_common::hist::bucket_bounds;

/// The `q`-quantile (0..=1) of the durations counted in `hist`, interpolated
/// linearly inside its bucket and never above `max`. When every value fell in
/// one bucket, their mean (`mean`) is the better estimate. 0 for an empty
/// histogram.
pub fn percentile(hist: &[u64], q: f64, max: u64, mean: u64) -> u64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    if hist.iter().filter(|&&n| n > 0).count() == 1 {
        return mean.min(max);
    }
    // The rank of the wanted value, 1-based, as in "the 99th of 100".
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, &count) in hist.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if seen + count >= rank {
            let (low, high) = bucket_bounds(bucket);
            let within = (rank - seen) as f64 / count as f64;
            let value = low as f64 + within * (high - low) as f64;
            return (value as u64).min(max);
        }
        seen += count;
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::hist::{HIST_BUCKETS, bucket};

    fn hist_of(values: &[u64]) -> Vec<u64> {
        let mut hist = vec![0; HIST_BUCKETS];
        for &v in values {
            hist[bucket(v)] += 1;
        }
        hist
    }

    #[test]
    fn buckets_are_contiguous_and_contain_their_values() {
        for b in 0..HIST_BUCKETS - 1 {
            let (low, high) = bucket_bounds(b);
            assert_eq!(high, bucket_bounds(b + 1).0, "gap after bucket {b}");
            assert_eq!(bucket(low), b);
            assert_eq!(bucket(high - 1), b);
        }
        for v in [0, 1, 63, 64, 65, 1000, 123_456, 10_000_000, 3_000_000_000] {
            let (low, high) = bucket_bounds(bucket(v));
            assert!(low <= v && v < high, "{v} not in [{low}, {high})");
        }
        assert_eq!(bucket(u64::MAX), HIST_BUCKETS - 1);
    }

    #[test]
    fn bucket_width_is_at_most_a_quarter() {
        for b in 8..HIST_BUCKETS {
            let (low, high) = bucket_bounds(b);
            assert!((high - low) * 4 <= low, "bucket {b} too wide");
        }
    }

    #[test]
    fn percentiles_within_bucket_resolution() {
        // 1..=1000 microseconds, evenly.
        let values: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let hist = hist_of(&values);
        let p50 = percentile(&hist, 0.5, 1_000_000, 500_500) as f64;
        let p99 = percentile(&hist, 0.99, 1_000_000, 500_500) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.13, "p50 {p50}");
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.13, "p99 {p99}");
        assert_eq!(percentile(&hist, 1.0, 1_000_000, 500_500), 1_000_000);
    }

    #[test]
    fn single_value_and_empty() {
        let hist = hist_of(&[150_000_000, 150_000_100, 150_000_200]);
        assert_eq!(
            percentile(&hist, 0.5, 150_000_200, 150_000_100),
            150_000_100
        );
        assert_eq!(percentile(&vec![0; HIST_BUCKETS], 0.5, 0, 0), 0);
    }
}
