//! 3.10 `co_linetable`: pairs of (offset delta: u8, line delta: i8), each
//! covering the bytes from the previous offset to the new one. A line delta
//! of -128 marks a range without a line (artificial instructions).

const NO_LINE: i8 = -128;

/// The line of the instruction at byte `offset`.
pub fn line_at(table: &[u8], first_line: i64, offset: u64) -> Option<i64> {
    let mut line = first_line;
    let mut end = 0u64;
    for &[offset_delta, line_delta] in table.as_chunks().0 {
        let start = end;
        end += u64::from(offset_delta);
        let line_delta = line_delta as i8;
        if line_delta != NO_LINE {
            line += i64::from(line_delta);
        }
        if (start..end).contains(&offset) {
            return (line_delta != NO_LINE).then_some(line);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::lines::test_tables::{SAMPLE_LINES_38_TO_310, hex};

    /// `sample.__code__.co_linetable` of 3.10.13.
    const SAMPLE_310: &str = "0401080108010a0102020201020102ff06ff007f044d";

    /// 3.10.13, first line 15:
    /// `def f4(a): try: a() / except (ValueError, KeyError) as e: del e / return a`
    /// (one statement a line); the `as e` cleanup has no line.
    const EXCEPT_310: &str = "02010801040312fe0c010401088002fe";
    /// Its `co_lines()`.
    const EXCEPT_RANGES: &[(u64, u64, Option<i64>)] = &[
        (0, 2, Some(16)),
        (2, 10, Some(17)),
        (10, 14, Some(20)),
        (14, 32, Some(18)),
        (32, 44, Some(19)),
        (44, 48, Some(20)),
        (48, 56, None),
        (56, 58, Some(18)),
    ];

    #[test]
    fn lines_of_every_instruction_match_dis() {
        let table = hex(SAMPLE_310);
        for &(offset, line) in SAMPLE_LINES_38_TO_310 {
            assert_eq!(line_at(&table, 1, offset), Some(line), "offset {offset}");
        }
    }

    #[test]
    fn ranges_without_a_line_match_co_lines() {
        let table = hex(EXCEPT_310);
        for &(start, end, line) in EXCEPT_RANGES {
            for offset in (start..end).step_by(2) {
                assert_eq!(line_at(&table, 15, offset), line, "offset {offset}");
            }
        }
        assert_eq!(line_at(&table, 15, 58), None, "past the end");
    }
}
