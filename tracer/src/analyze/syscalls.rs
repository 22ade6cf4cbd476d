//! The `strace -c`-like table.

use super::percentile::percentile;
use crate::{report::model::SyscallRow, syscalls, trace::SyscallTotals};

/// One row per syscall seen, most total time first (as `strace -c` sorts).
pub fn table(totals: &[SyscallTotals]) -> Vec<SyscallRow> {
    let mut rows: Vec<SyscallRow> = totals
        .iter()
        .filter(|t| t.count > 0)
        .map(|t| {
            let avg_ns = t.total_ns / t.count;
            SyscallRow {
                name: syscalls::name(t.nr),
                nr: t.nr,
                count: t.count,
                errors: t.errors,
                total_ns: t.total_ns,
                avg_ns,
                max_ns: t.max_ns,
                p50_ns: percentile(&t.hist, 0.50, t.max_ns, avg_ns),
                p99_ns: percentile(&t.hist, 0.99, t.max_ns, avg_ns),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.nr.cmp(&b.nr)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::hist::{HIST_BUCKETS, bucket};

    #[test]
    fn sorts_by_total_and_computes_averages() {
        let mut hist = vec![0; HIST_BUCKETS];
        hist[bucket(1_000)] = 3;
        let totals = vec![
            SyscallTotals {
                nr: 0,
                count: 3,
                errors: 1,
                total_ns: 3_000,
                max_ns: 1_000,
                hist: hist.clone(),
            },
            SyscallTotals {
                nr: 230,
                count: 1,
                errors: 0,
                total_ns: 150_000_000,
                max_ns: 150_000_000,
                hist: {
                    let mut h = vec![0; HIST_BUCKETS];
                    h[bucket(150_000_000)] = 1;
                    h
                },
            },
        ];
        let rows = table(&totals);
        assert_eq!(rows[0].name, "clock_nanosleep");
        assert_eq!(rows[1].name, "read");
        assert_eq!(
            (rows[1].count, rows[1].errors, rows[1].avg_ns),
            (3, 1, 1_000)
        );
        assert_eq!(rows[1].p50_ns, 1_000);
        assert_eq!(rows[0].p99_ns, 150_000_000);
    }
}
