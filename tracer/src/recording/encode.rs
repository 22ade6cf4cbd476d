//! Writing a recording.

use std::{
    io::{self, Write},
    path::Path,
};

use flate2::{Compression, write::ZlibEncoder};

use super::format::{HEADER_LEN, Header, MAX_PAYLOAD};
use crate::{
    output::{OutputError, write_bytes},
    trace::Trace,
};

/// The bytes of a recording of `trace`.
pub fn encode(trace: &Trace) -> io::Result<Vec<u8>> {
    wrap(&postcard::to_stdvec(trace).map_err(io::Error::other)?)
}

/// A recording of the encoded trace `raw`: header and compressed payload.
pub(super) fn wrap(raw: &[u8]) -> io::Result<Vec<u8>> {
    if raw.len() as u64 > MAX_PAYLOAD {
        return Err(io::Error::other(format!(
            "the recording would be {} MiB, more than the {} MiB a recording may hold: \
             record for a shorter --duration",
            raw.len() >> 20,
            MAX_PAYLOAD >> 20
        )));
    }
    let mut zlib = ZlibEncoder::new(Vec::with_capacity(raw.len() / 4), Compression::default());
    zlib.write_all(raw)?;
    let stored = zlib.finish()?;
    let header = Header {
        raw_len: raw.len() as u64,
        stored_len: stored.len() as u64,
    };
    let mut file = Vec::with_capacity(HEADER_LEN + stored.len());
    file.extend_from_slice(&header.to_bytes());
    file.extend_from_slice(&stored);
    Ok(file)
}

/// Saves a recording of `trace` at `path`, as safely as every output.
pub fn save(path: &Path, trace: &Trace) -> Result<(), OutputError> {
    let bytes = encode(trace).map_err(|source| OutputError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    write_bytes(path, &bytes)
}
