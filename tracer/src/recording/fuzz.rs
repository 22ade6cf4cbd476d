//! Fuzzing the reader: damaged files must give a [`Problem`], never a panic
//! or a huge allocation, and whatever still decodes must render. Run it
//! longer with `PROPTEST_CASES=200000 cargo test --release recording::fuzz`.
//! Inputs it ever breaks on are kept below as regression tests.

use proptest::prelude::*;

use super::{
    decode::{Problem, decode},
    encode::{encode, wrap},
    format::{HEADER_LEN, MAGIC},
    sample,
};
use crate::{
    analyze::analyze,
    report::{text, timeline, to_json},
};

/// Decodes `bytes`; if that works, renders every report of the trace.
fn read_and_render(bytes: &[u8]) -> Result<(), Problem> {
    let trace = decode(bytes)?;
    let report = analyze(&trace);
    text::render(&report, text::StallsBy::Task);
    to_json(&report);
    timeline::render(&trace, &report);
    Ok(())
}

fn good() -> Vec<u8> {
    encode(&sample::trace()).expect("encode the sample")
}

fn raw() -> Vec<u8> {
    postcard::to_stdvec(&sample::trace()).expect("encode the sample")
}

/// Flips, overwrites and cuts: (position, byte) edits, then a length.
fn damage(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    for &(at, value) in edits {
        let len = bytes.len();
        if len > 0 {
            bytes[at % len] = value;
        }
    }
    bytes.truncate(keep);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256), magic in any::<bool>()) {
        let bytes = if magic { [&MAGIC[..], &bytes].concat() } else { bytes };
        let _ = read_and_render(&bytes);
    }

    #[test]
    fn damaged_file(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        keep in any::<usize>(),
    ) {
        let _ = read_and_render(&damage(good(), &edits, keep));
    }

    /// The payload damaged under a valid header and checksum: what postcard
    /// and the reports see from a file made to be misread.
    #[test]
    fn damaged_payload(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        keep in any::<usize>(),
    ) {
        let bytes = wrap(&damage(raw(), &edits, keep)).expect("wrap");
        let _ = read_and_render(&bytes);
    }

    #[test]
    fn any_header_lengths(raw_len in any::<u64>(), stored_len in any::<u64>()) {
        let mut bytes = good();
        bytes[12..20].copy_from_slice(&raw_len.to_le_bytes());
        bytes[20..28].copy_from_slice(&stored_len.to_le_bytes());
        let _ = read_and_render(&bytes);
    }
}

/// A sequence length of 2^62 in the payload must fail on the missing bytes,
/// not reserve memory for 2^62 elements.
#[test]
fn huge_sequence_length() {
    let mut raw = vec![1, 1, b'p']; // target: pid 1, comm "p"
    raw.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f]); // cmdline: 2^62 strings
    let result = read_and_render(&wrap(&raw).unwrap());
    assert!(matches!(result, Err(Problem::Corrupt(_))), "{result:?}");
}

#[test]
fn header_only() {
    let bytes = &good()[..HEADER_LEN];
    assert!(matches!(
        read_and_render(bytes),
        Err(Problem::Truncated { .. })
    ));
}

/// Found by cargo-fuzz: histograms the analysis cannot read — counts that
/// overflow when summed, more buckets than there are — are refused.
#[test]
fn impossible_histograms() {
    let mut counts = sample::trace();
    counts.runqueue.hist = vec![u64::MAX, u64::MAX];
    let mut buckets = sample::trace();
    buckets.syscalls[0].hist = vec![1; 1000];
    for trace in [counts, buckets] {
        let result = read_and_render(&encode(&trace).unwrap());
        assert!(
            matches!(&result, Err(Problem::Corrupt(m)) if m.contains("histogram")),
            "{result:?}"
        );
    }
}
