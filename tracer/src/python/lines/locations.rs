//! 3.11+ location table (PEP 626/657, Objects/locations.md in CPython).
//! Each entry starts with a byte with bit 7 set: bits 3–6 are the form
//! (`code`), bits 0–2 the number of 2-byte code units covered, minus one.
//! The line delta depends on the form; column bytes follow, all below 0x80.

/// Form 15: the instructions have no location.
const NO_LOCATION: u8 = 15;
/// Form 14 (all positions as varints) and 13 (line only) start with the
/// line delta as a signed varint.
const LONG: u8 = 14;
const NO_COLUMNS: u8 = 13;
/// Forms 10–12: one-line forms whose line delta is `code - 10`.
const ONE_LINE_FIRST: u8 = 10;

/// The line of the instruction at byte `offset`.
pub fn line_at(table: &[u8], first_line: i64, offset: u64) -> Option<i64> {
    let mut bytes = table.iter().copied().peekable();
    let mut line = first_line;
    let mut start = 0u64;
    while let Some(first) = bytes.next() {
        if first & 0x80 == 0 {
            return None; // not at an entry: a corrupt table
        }
        let code = (first >> 3) & 0b1111;
        let end = start + 2 * (u64::from(first & 0b111) + 1);
        match code {
            NO_LOCATION => {}
            LONG | NO_COLUMNS => line += read_svarint(&mut bytes)?,
            ONE_LINE_FIRST..=12 => line += i64::from(code - ONE_LINE_FIRST),
            _ => {}
        }
        if (start..end).contains(&offset) {
            return (code != NO_LOCATION).then_some(line);
        }
        start = end;
        // Skip the columns.
        while bytes.next_if(|b| b & 0x80 == 0).is_some() {}
    }
    None
}

/// Little-endian chunks of 6 bits; bit 6 says another chunk follows.
fn read_varint(bytes: &mut impl Iterator<Item = u8>) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(6) {
        let byte = bytes.next()?;
        value |= u64::from(byte & 0x3f) << shift;
        if byte & 0x40 == 0 {
            return Some(value);
        }
    }
    None
}

/// A varint whose lowest bit is the sign.
fn read_svarint(bytes: &mut impl Iterator<Item = u8>) -> Option<i64> {
    let value = i64::try_from(read_varint(bytes)?).ok()?;
    Some(if value & 1 != 0 {
        -(value >> 1)
    } else {
        value >> 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::lines::test_tables::hex;

    struct Sample {
        version: &'static str,
        table: &'static str,
        lines: &'static [(u64, i64)],
    }

    /// `sample.__code__.co_linetable` and (offset, line) of its instructions
    /// from `co_lines()`, per version (the table holds its 200-line jump as a
    /// long-form entry).
    const SAMPLES: &[Sample] = &[
        Sample {
            version: "3.11.7",
            table: "8000d80c0d8045d81015f00007050ef00007050e8804d80b0f90218938f00006090ed80c119054894d88458845e00c11d81014d81213f103011114f103030d0e88458845f05806000c11804c",
            lines: &[
                (0, 1),
                (2, 2),
                (4, 2),
                (6, 3),
                (8, 3),
                (10, 3),
                (12, 3),
                (14, 4),
                (16, 4),
                (18, 4),
                (22, 4),
                (24, 5),
                (26, 5),
                (28, 5),
                (32, 5),
                (34, 5),
                (36, 7),
                (38, 8),
                (40, 9),
                (42, 8),
                (46, 7),
                (50, 7),
                (52, 7),
                (54, 211),
                (56, 211),
            ],
        },
        Sample {
            version: "3.12.1",
            table: "8000d80c0d8045d81015f20007050e8804d80b0f90218a38d80c119054894d8945e00c11d81014d81213f103011114f103030d0e8945f00907050ef06006000c11804c",
            lines: &[
                (0, 1),
                (2, 2),
                (4, 2),
                (6, 3),
                (8, 3),
                (10, 3),
                (14, 3),
                (16, 4),
                (18, 4),
                (20, 4),
                (24, 4),
                (26, 5),
                (28, 5),
                (30, 5),
                (34, 5),
                (36, 5),
                (38, 7),
                (40, 8),
                (42, 9),
                (44, 8),
                (48, 7),
                (52, 7),
                (54, 7),
                (56, 3),
                (58, 211),
                (60, 211),
            ],
        },
        Sample {
            version: "3.13.0",
            table: "8000d80c0d8045db10158804d80b0f90218f38d80c11894d8a45e00c11d81014d81213f103011114f103030d0e8a45f109001116f06006000c11804c",
            lines: &[
                (0, 1),
                (2, 2),
                (4, 2),
                (6, 3),
                (8, 3),
                (10, 3),
                (14, 3),
                (16, 4),
                (18, 4),
                (20, 4),
                (24, 4),
                (32, 4),
                (36, 5),
                (38, 5),
                (42, 5),
                (44, 5),
                (48, 7),
                (50, 8),
                (52, 9),
                (54, 8),
                (58, 7),
                (62, 7),
                (64, 7),
                (68, 3),
                (70, 3),
                (72, 211),
                (74, 211),
            ],
        },
    ];

    /// 3.12.1, first line 2: `def guarded(lock, work): with lock: try:
    /// work() / except ValueError: return -1 / return 0` (one statement a
    /// line), and its `co_lines()`; the `with` cleanup has no location.
    const GUARDED_312: &str = "8000d8090df100040516f002030916d90c108d46f705040516f00a000c0df8f40500101af200010916d81315f709040516f000040516f006010916faf707040516f00a000c0dfa";
    const GUARDED_RANGES: &[(u64, u64, Option<i64>)] = &[
        (0, 2, Some(2)),
        (2, 8, Some(3)),
        (8, 10, Some(4)),
        (10, 26, Some(5)),
        (26, 42, Some(3)),
        (42, 44, Some(8)),
        (44, 46, None),
        (46, 62, Some(6)),
        (62, 64, Some(7)),
        (64, 82, Some(3)),
        (82, 84, Some(6)),
        (84, 90, None),
        (90, 106, Some(3)),
        (106, 108, Some(8)),
        (108, 114, None),
    ];

    #[test]
    fn lines_of_every_instruction_match_co_lines() {
        for sample in SAMPLES {
            let table = hex(sample.table);
            for &(offset, line) in sample.lines {
                assert_eq!(
                    line_at(&table, 1, offset),
                    Some(line),
                    "{} offset {offset}",
                    sample.version
                );
            }
        }
    }

    #[test]
    fn entries_without_a_location_have_no_line() {
        let table = hex(GUARDED_312);
        for &(start, end, line) in GUARDED_RANGES {
            for offset in (start..end).step_by(2) {
                assert_eq!(line_at(&table, 2, offset), line, "offset {offset}");
            }
        }
        assert_eq!(line_at(&table, 2, 114), None, "past the end");
    }

    #[test]
    fn varints() {
        // 408 = 0b110_011000: chunks 24 (with the "more" bit) and 6.
        assert_eq!(read_varint(&mut [0x58, 0x06].into_iter()), Some(408));
        assert_eq!(read_svarint(&mut [0x58, 0x06].into_iter()), Some(204));
        assert_eq!(read_svarint(&mut [0x03].into_iter()), Some(-1));
        assert_eq!(read_varint(&mut [0x40].into_iter()), None, "truncated");
    }
}
