//! The fixed header at the start of a recording.

use super::decode::Problem;

pub const MAGIC: [u8; 8] = *b"\x89tracer\n";
/// Bump on every change to `Trace` or to the layout.
pub const FORMAT_VERSION: u32 = 6;
pub const HEADER_LEN: usize = 28;
/// Largest payload accepted, stored or decompressed: far above a long
/// recording of a busy service, far below what a corrupt length could ask
/// for. Buffers only grow as bytes actually arrive, never to a length read
/// from the file.
pub const MAX_PAYLOAD: u64 = 1 << 30;

/// The header of a file in [`FORMAT_VERSION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload length once decompressed (the postcard bytes).
    pub raw_len: u64,
    /// Payload length in the file (the zlib bytes).
    pub stored_len: u64,
}

impl Header {
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.raw_len.to_le_bytes());
        bytes[20..28].copy_from_slice(&self.stored_len.to_le_bytes());
        bytes
    }

    /// Reads the header at the start of `bytes`. The lengths are the
    /// caller's to check against what follows.
    pub fn parse(bytes: &[u8]) -> Result<Self, Problem> {
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes.is_empty() || bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(Problem::NotARecording);
        }
        let (Some(version), Some(raw_len), Some(stored_len)) = (
            le_bytes(bytes, 8).map(u32::from_le_bytes),
            le_bytes(bytes, 12).map(u64::from_le_bytes),
            le_bytes(bytes, 20).map(u64::from_le_bytes),
        ) else {
            return Err(Problem::Truncated {
                have: bytes.len() as u64,
                need: HEADER_LEN as u64,
            });
        };
        match version {
            FORMAT_VERSION => Ok(Self {
                raw_len,
                stored_len,
            }),
            newer if newer > FORMAT_VERSION => Err(Problem::Newer { found: newer }),
            older => Err(Problem::Older { found: older }),
        }
    }
}

/// The `N` bytes at `at`, if there are that many.
fn le_bytes<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let header = Header {
            raw_len: 1234,
            stored_len: 99,
        };
        assert_eq!(Header::parse(&header.to_bytes()), Ok(header));
    }

    #[test]
    fn problems() {
        assert_eq!(Header::parse(b""), Err(Problem::NotARecording));
        assert_eq!(
            Header::parse(b"{\"version\": 1}"),
            Err(Problem::NotARecording)
        );
        assert_eq!(
            Header::parse(&MAGIC[..5]),
            Err(Problem::Truncated { have: 5, need: 28 })
        );
        let mut bytes = Header {
            raw_len: 0,
            stored_len: 0,
        }
        .to_bytes();
        assert_eq!(
            Header::parse(&bytes[..20]),
            Err(Problem::Truncated { have: 20, need: 28 })
        );
        bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert_eq!(
            Header::parse(&bytes),
            Err(Problem::Newer {
                found: FORMAT_VERSION + 1
            })
        );
        bytes[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Header::parse(&bytes), Err(Problem::Older { found: 0 }));
    }
}
