//! Reading a recording file.

use std::{
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
};

use super::{
    decode::{Problem, decode},
    format::{HEADER_LEN, Header, MAX_PAYLOAD},
};
use crate::trace::Trace;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot read the recording {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: Problem },
}

pub fn load(path: &Path) -> Result<Trace, RecordingError> {
    let read_error = |source| RecordingError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let bytes = read_bounded(file).map_err(read_error)?;
    decode(&bytes).map_err(|problem| RecordingError::Invalid {
        path: path.to_path_buf(),
        problem,
    })
}

/// The header, then no more than the payload it announces and one byte (to
/// notice trailing data): a huge or endless file (/dev/zero) is not read
/// whole.
fn read_bounded(file: impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut header = file.take(HEADER_LEN as u64);
    header.read_to_end(&mut bytes)?;
    let announced = Header::parse(&bytes).map_or(0, |h| h.stored_len.min(MAX_PAYLOAD));
    header
        .into_inner()
        .take(announced + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_input_is_not_read_whole() {
        let zeros = io::repeat(0);
        assert_eq!(read_bounded(zeros).unwrap().len(), HEADER_LEN + 1);
        let file = File::open("/dev/zero").unwrap();
        assert_eq!(read_bounded(file).unwrap().len(), HEADER_LEN + 1);
    }

    #[test]
    fn missing_file() {
        let error = load(Path::new("/no/such/recording.rec")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read the recording /no/such/recording.rec: \
             No such file or directory (os error 2)"
        );
    }
}
