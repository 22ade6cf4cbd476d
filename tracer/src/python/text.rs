//! Decoding a Python `str` object read from the target's memory.

use super::offsets::StrLayout;
use crate::procfs::memory::{ProcessMemory, i64_at};

/// Longer strings are cut: names and paths are much shorter, and the bound
/// keeps a corrupt length from making a huge read.
const MAX_STR_CHARS: usize = 1024;

/// `PyASCIIObject`: `length` (Py_ssize_t) and `state` (a bit field).
const LENGTH: u32 = 16;
const STATE: u32 = 32;

/// Bits of `state`: interned:2, kind:3, compact:1, ascii:1.
const KIND_SHIFT: u8 = 2;
const KIND_MASK: u8 = 0b111;
const COMPACT: u8 = 1 << 5;
const ASCII: u8 = 1 << 6;

/// The text of the `str` at `address`; `None` if it cannot be read or is
/// not a ready string.
pub fn read_str(memory: &ProcessMemory, layout: &StrLayout, address: u64) -> Option<String> {
    let header: [u8; STATE as usize + 1] = memory.read_array(address)?;
    let length = usize::try_from(i64_at(&header, LENGTH)?).ok()?;
    let state = header[STATE as usize];
    let kind = usize::from((state >> KIND_SHIFT) & KIND_MASK);
    if !matches!(kind, 1 | 2 | 4) {
        return None; // a legacy string that is not ready (≤3.11)
    }
    let data = if state & COMPACT == 0 {
        // Legacy string (≤3.11): the characters are elsewhere, at `data.any`.
        memory.read_u64(address + u64::from(layout.compact_size))?
    } else if state & ASCII != 0 {
        address + u64::from(layout.ascii_size)
    } else {
        address + u64::from(layout.compact_size)
    };
    let bytes = memory.read_vec(data, length.min(MAX_STR_CHARS) * kind)?;
    Some(decode(&bytes, kind))
}

/// The text of a compact `str` whose first bytes are `bytes` (copied by the
/// kernel at an event); a text cut by the copy's end ends in `…`.
pub fn str_in_bytes(bytes: &[u8], layout: &StrLayout) -> Option<String> {
    let length = usize::try_from(i64_at(bytes, LENGTH)?).ok()?;
    let state = *bytes.get(STATE as usize)?;
    let kind = usize::from((state >> KIND_SHIFT) & KIND_MASK);
    if !matches!(kind, 1 | 2 | 4) || state & COMPACT == 0 {
        return None;
    }
    let data = if state & ASCII != 0 {
        layout.ascii_size
    } else {
        layout.compact_size
    };
    let chars = bytes.get(data as usize..)?;
    let whole = length * kind;
    let mut text = decode(&chars[..whole.min(chars.len() / kind * kind)], kind);
    if whole > chars.len() {
        text.push('…');
    }
    Some(text)
}

/// Characters of `kind` little-endian bytes each (1: Latin-1, 2: UCS-2,
/// 4: UCS-4).
fn decode(bytes: &[u8], kind: usize) -> String {
    bytes
        .chunks_exact(kind)
        .map(|unit| unit.iter().rev().fold(0, |c, &b| c << 8 | u32::from(b)))
        .map(|c| char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact_ascii(text: &str) -> Vec<u8> {
        let mut bytes = vec![0u8; 40];
        bytes[16..24].copy_from_slice(&(text.len() as i64).to_le_bytes());
        bytes[32] = COMPACT | ASCII | 1 << KIND_SHIFT;
        bytes.extend(text.as_bytes());
        bytes
    }

    #[test]
    fn reads_a_copied_str_and_marks_a_cut() {
        let layout = StrLayout {
            ascii_size: 40,
            compact_size: 56,
        };
        assert_eq!(
            str_in_bytes(&compact_ascii("slow-recv"), &layout).as_deref(),
            Some("slow-recv")
        );
        let mut cut = compact_ascii("fetch-user-42");
        cut.truncate(40 + 5);
        assert_eq!(str_in_bytes(&cut, &layout).as_deref(), Some("fetch…"));
    }

    #[test]
    fn decodes_each_kind() {
        assert_eq!(decode(b"gr\xfc\xdfe", 1), "grüße");
        assert_eq!(decode(&[0xfd, 0x51, 0x70, 0x65], 2), "函数");
        assert_eq!(decode(&[0x00, 0xf6, 0x01, 0x00, 0x78, 0, 0, 0], 4), "😀x");
        // A lone surrogate is no char.
        assert_eq!(decode(&[0x00, 0xd8], 2), "\u{fffd}");
    }
}
