//! 3.8/3.9 `co_lnotab`: pairs of (offset increment: u8, line increment: i8).
//! An instruction's line is the sum of the line increments of all pairs
//! whose offset lies at or before it.

/// The line of the instruction at byte `offset`.
pub fn line_at(table: &[u8], first_line: i64, offset: u64) -> Option<i64> {
    let mut line = first_line;
    let mut address = 0u64;
    for &[offset_delta, line_delta] in table.as_chunks().0 {
        address += u64::from(offset_delta);
        if address > offset {
            break;
        }
        line += i64::from(line_delta as i8);
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::lines::test_tables::{SAMPLE_LINES_38_TO_310, hex};

    /// `sample.__code__.co_lnotab` of 3.8.18 and 3.9.18 (the same bytes):
    /// a 200-line jump (two pairs) and negative line increments.
    const SAMPLE_38: &str = "00010401080108010a020201020102ff02ff067f004d";

    #[test]
    fn lines_of_every_instruction_match_dis() {
        let table = hex(SAMPLE_38);
        for &(offset, line) in SAMPLE_LINES_38_TO_310 {
            assert_eq!(line_at(&table, 1, offset), Some(line), "offset {offset}");
        }
    }
}
