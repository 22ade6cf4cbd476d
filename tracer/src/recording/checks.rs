//! What a decoded trace must satisfy before the analysis sees it. A live
//! trace holds by construction what the kernel wrote; a file may hold
//! anything, and the analysis trusts these.

use tracer_common::hist::HIST_BUCKETS;

use super::decode::Problem;
use crate::trace::Trace;

pub fn check(trace: &Trace) -> Result<(), Problem> {
    let histograms = trace
        .syscalls
        .iter()
        .map(|s| &s.hist)
        .chain(trace.loops.iter().map(|l| &l.hist))
        .chain([&trace.runqueue.hist]);
    for hist in histograms {
        if hist.len() > HIST_BUCKETS {
            return Err(Problem::Corrupt(format!(
                "a histogram of {} buckets (at most {HIST_BUCKETS})",
                hist.len()
            )));
        }
        if hist
            .iter()
            .try_fold(0u64, |sum, &n| sum.checked_add(n))
            .is_none()
        {
            return Err(Problem::Corrupt(
                "a histogram counts more than 2^64 values".into(),
            ));
        }
    }
    Ok(())
}
