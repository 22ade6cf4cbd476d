//! Checking and decoding the bytes of a recording. Every length in the file
//! is checked against the bytes actually there before it is used.

use std::io::Read;

use flate2::bufread::ZlibDecoder;

use super::{
    checks::check,
    format::{FORMAT_VERSION, HEADER_LEN, Header, MAX_PAYLOAD},
};
use crate::trace::Trace;

/// Why bytes are not a recording this tracer can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a tracer recording (make one with `sudo tracer --pid PID --record FILE`)")]
    NotARecording,
    #[error(
        "the recording is truncated: {have} of its {need} bytes are there \
         (was its copy or download cut short?)"
    )]
    Truncated { have: u64, need: u64 },
    #[error(
        "recorded by a newer tracer (recording format {found}; this tracer reads \
         format {FORMAT_VERSION}): read it with a newer tracer"
    )]
    Newer { found: u32 },
    #[error(
        "recording format {found} is older than this tracer reads (format \
         {FORMAT_VERSION}): read it with the tracer that recorded it"
    )]
    Older { found: u32 },
    #[error("the recording is corrupt: {0}")]
    Corrupt(String),
}

pub fn decode(bytes: &[u8]) -> Result<Trace, Problem> {
    let header = Header::parse(bytes)?;
    for len in [header.raw_len, header.stored_len] {
        if len > MAX_PAYLOAD {
            return Err(Problem::Corrupt(format!(
                "a payload length of {len} bytes is beyond the {MAX_PAYLOAD}-byte limit"
            )));
        }
    }
    let stored = &bytes[HEADER_LEN..];
    let need = HEADER_LEN as u64 + header.stored_len;
    if (stored.len() as u64) < header.stored_len {
        return Err(Problem::Truncated {
            have: bytes.len() as u64,
            need,
        });
    }
    if stored.len() as u64 > header.stored_len {
        return Err(Problem::Corrupt(format!(
            "unknown data after the first {need} bytes"
        )));
    }
    let raw = inflate(stored, header.raw_len)?;
    match postcard::take_from_bytes::<Trace>(&raw) {
        Ok((trace, [])) => check(&trace).map(|()| trace),
        Ok((_, rest)) => Err(Problem::Corrupt(format!(
            "{} unknown bytes after the trace",
            rest.len()
        ))),
        Err(e) => Err(Problem::Corrupt(format!("undecodable trace ({e})"))),
    }
}

/// Decompresses exactly `raw_len` bytes (and not one more) from the whole
/// of `stored`.
fn inflate(stored: &[u8], raw_len: u64) -> Result<Vec<u8>, Problem> {
    let mut zlib = ZlibDecoder::new(stored);
    let mut raw = Vec::new();
    (&mut zlib)
        .take(raw_len + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Problem::Corrupt(format!("bad compressed data ({e})")))?;
    if raw.len() as u64 != raw_len {
        return Err(Problem::Corrupt(format!(
            "the trace is {} bytes long, its header says {raw_len}",
            raw.len()
        )));
    }
    if !zlib.into_inner().is_empty() {
        return Err(Problem::Corrupt(
            "unknown data after the compressed trace".into(),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{encode, sample};

    #[test]
    fn round_trip() {
        let trace = sample::trace();
        assert_eq!(decode(&encode(&trace).unwrap()), Ok(trace));
        let empty = Trace::empty(sample::trace().target);
        assert_eq!(decode(&encode(&empty).unwrap()), Ok(empty));
    }

    /// A file of the current format must still decode to the same trace. If this fails
    /// after a change to `Trace`, bump FORMAT_VERSION and rewrite the file
    /// with `UPDATE_GOLDEN=1` (then files of the old format are refused
    /// with a clear message instead of misread).
    #[test]
    fn golden_format() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/recording/testdata/sample.rec"
        );
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, encode(&sample::trace()).unwrap()).unwrap();
        }
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            decode(&bytes),
            Ok(sample::trace()),
            "testdata/sample.rec no longer reads back: if Trace changed, bump \
             FORMAT_VERSION and rewrite the file (UPDATE_GOLDEN=1)"
        );
    }

    #[test]
    fn problems() {
        let good = encode(&sample::trace()).unwrap();
        let cut = &good[..good.len() - 10];
        assert_eq!(
            decode(cut),
            Err(Problem::Truncated {
                have: cut.len() as u64,
                need: good.len() as u64
            })
        );
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(Problem::Corrupt(m)) if m.contains("unknown data")));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(matches!(decode(&flipped), Err(Problem::Corrupt(m)) if m.contains("compressed")));
        let mut huge = good.clone();
        huge[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(Problem::Corrupt(m)) if m.contains("limit")));
        let mut short = good;
        short[12..20].copy_from_slice(&1u64.to_le_bytes());
        assert!(matches!(decode(&short), Err(Problem::Corrupt(m)) if m.contains("header says 1")));
    }

    #[test]
    fn messages_are_one_line() {
        let problems = [
            Problem::NotARecording,
            Problem::Truncated { have: 3, need: 28 },
            Problem::Newer { found: 7 },
            Problem::Older { found: 0 },
            Problem::Corrupt("x".into()),
        ];
        for problem in problems {
            assert!(!problem.to_string().contains('\n'), "{problem}");
        }
        assert_eq!(
            Problem::Newer { found: 70 }.to_string(),
            format!(
                "recorded by a newer tracer (recording format 70; this tracer reads format \
                 {FORMAT_VERSION}): read it with a newer tracer"
            )
        );
    }
}
