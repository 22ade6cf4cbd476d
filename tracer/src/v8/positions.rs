//! Source positions: V8's position tables (code offset → script offset) and
//! script offsets → line and column. Pure code on bytes already read.

/// The code offset V8's tables start from (`kFunctionEntryBytecodeOffset`).
const FUNCTION_ENTRY_OFFSET: i64 = -1;

/// Where a script offset is in its script: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineColumn {
    pub line: u32,
    pub column: u32,
}

/// The script offset of the code at `code_offset` in a bytecode array's
/// position table (see [`position_at`]); None if the table has none there,
/// or the position is external or unknown.
pub fn script_offset_at(table: &[u8], code_offset: u32) -> Option<u32> {
    SourcePosition::decode(position_at(table, i64::from(code_offset))?).script_offset
}

/// The raw source position of the code at `code_offset`, from a V8 source
/// position table (a BytecodeArray's, or compiled code's: code offsets are
/// then machine code offsets): pairs of (code offset, source position)
/// deltas, each a zigzag varint, the code offset negated for non-statement
/// positions. The position is the last entry's at or before `code_offset`.
/// None if the table is malformed or has no such entry. Code offsets count
/// from -1, V8's offset of the function's entry (its first entry: the
/// function's own position, then the first statement's at offset 0).
pub fn position_at(table: &[u8], code_offset: i64) -> Option<i64> {
    let mut bytes = table.iter().copied();
    let (mut code, mut position) = (FUNCTION_ENTRY_OFFSET, 0i64);
    let mut found = None;
    while let Some(code_delta) = read_zigzag(&mut bytes) {
        let code_delta = if code_delta >= 0 {
            code_delta
        } else {
            -(code_delta + 1)
        };
        let position_delta = read_zigzag(&mut bytes)?;
        code = code.checked_add(code_delta)?;
        position = position.checked_add(position_delta)?;
        if code > code_offset {
            break;
        }
        found = Some(position);
    }
    found
}

/// A V8 `SourcePosition` (64 bits): bit 0 says external (a file and line
/// of its own, not a script offset), bits 1..31 hold the script offset + 1,
/// bits 31..47 the inlining id + 1 (compiled code only: 0 where the code
/// is the function's own, not a function inlined into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePosition {
    pub script_offset: Option<u32>,
    /// The index of the inlining in the code's inlining positions.
    pub inlining: Option<usize>,
}

impl SourcePosition {
    pub fn decode(raw: i64) -> Self {
        let inlining = (raw >> 31) & 0xffff;
        Self {
            script_offset: script_offset(raw),
            inlining: usize::try_from(inlining - 1).ok(),
        }
    }
}

/// A `SourcePosition`'s script offset: none if external or unknown.
fn script_offset(raw: i64) -> Option<u32> {
    if raw & 1 != 0 {
        return None;
    }
    let stored = (raw >> 1) & ((1 << 30) - 1);
    u32::try_from(stored.checked_sub(1)?).ok()
}

/// An unsigned varint, 7 bits a byte, least significant first (V8's
/// position and bytecode offset tables).
pub fn read_varint(bytes: &mut impl Iterator<Item = u8>) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = bytes.next()?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A zigzag-encoded varint: the sign in the lowest bit.
fn read_zigzag(bytes: &mut impl Iterator<Item = u8>) -> Option<i64> {
    let bits = read_varint(bytes)?;
    let magnitude = (bits >> 1) as i64;
    Some(if bits & 1 == 0 { magnitude } else { !magnitude })
}

/// The line and column of `offset`, given where each line ends (the offset
/// of its line terminator, ascending, as V8's `Script::line_ends`).
pub fn line_column(line_ends: &[u32], offset: u32) -> Option<LineColumn> {
    let index = line_ends.partition_point(|&end| end < offset);
    if index == line_ends.len() && line_ends.last().is_some_and(|&end| end < offset) {
        return None;
    }
    let line_start = match index {
        0 => 0,
        _ => line_ends[index - 1] + 1,
    };
    Some(LineColumn {
        line: u32::try_from(index).ok()? + 1,
        column: offset - line_start + 1,
    })
}

/// Line ends of a source text, as V8 computes them: each `\n`, and the end
/// of the text (the last line needs no terminator).
pub fn line_ends(source: &[u16]) -> Vec<u32> {
    let mut ends: Vec<u32> = source
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c == u16::from(b'\n'))
        .filter_map(|(i, _)| u32::try_from(i).ok())
        .collect();
    if let Ok(len) = u32::try_from(source.len())
        && ends.last() != Some(&len)
    {
        ends.push(len);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(value: i64, out: &mut Vec<u8>) {
        let mut bits = ((value << 1) ^ (value >> 63)) as u64;
        loop {
            let byte = (bits & 0x7f) as u8;
            bits >>= 7;
            if bits == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A table as V8 encodes one: (code offset, script offset, statement).
    fn table(entries: &[(i64, i64, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut code, mut position) = (FUNCTION_ENTRY_OFFSET, 0);
        for &(c, offset, statement) in entries {
            let raw = (offset + 1) << 1;
            let delta = c - code;
            zigzag(if statement { delta } else { -delta - 1 }, &mut out);
            zigzag(raw - position, &mut out);
            (code, position) = (c, raw);
        }
        out
    }

    #[test]
    fn positions_are_the_last_entry_at_or_before_the_code_offset() {
        let t = table(&[
            (FUNCTION_ENTRY_OFFSET, 100, false),
            (0, 120, true),
            (5, 300, false),
            (9, 150, true),
            (400, 90_000, true),
        ]);
        assert_eq!(script_offset_at(&t, 0), Some(120));
        assert_eq!(script_offset_at(&t, 4), Some(120));
        assert_eq!(script_offset_at(&t, 5), Some(300));
        assert_eq!(script_offset_at(&t, 20), Some(150));
        assert_eq!(script_offset_at(&t, 401), Some(90_000));
        assert_eq!(script_offset_at(&[], 3), None);
        // A cut table is no answer, not the last position read.
        assert_eq!(script_offset_at(&t[..t.len() - 1], 401), None);
    }

    /// The table Node 20 wrote for a function whose script starts 1168
    /// bytes before it, its statements at 41, 96 and 103 (`--print-bytecode`:
    /// `41 S> @ 0 : CallUndefinedReceiver1`, `96 S> @ 4`, `103 S> @ 8`).
    #[test]
    fn a_table_node_wrote() {
        let t = [1, 156, 37, 2, 76, 8, 220, 1, 8, 28];
        assert_eq!(script_offset_at(&t, 0), Some(1168 + 41));
        assert_eq!(script_offset_at(&t, 3), Some(1168 + 41));
        assert_eq!(script_offset_at(&t, 4), Some(1168 + 96));
        assert_eq!(script_offset_at(&t, 8), Some(1168 + 103));
    }

    /// The table Node 20's TurboFan wrote for a function (`checkQuota`)
    /// with another inlined into it, read from the live process: entries
    /// at machine code offsets 0 (script offset 199), 39 (164 in the
    /// inlined function: inlining 0), 74 (273) and 100 (199).
    #[test]
    fn an_optimized_table_node_wrote() {
        let t = [
            3, 160, 6, 79, 244, 254, 255, 255, 15, 71, 203, 252, 255, 255, 15, 53, 167, 2,
        ];
        let at = |pc| position_at(&t, pc).map(SourcePosition::decode);
        let own = |offset| SourcePosition {
            script_offset: Some(offset),
            inlining: None,
        };
        let inlined = SourcePosition {
            script_offset: Some(164),
            inlining: Some(0),
        };
        assert_eq!(at(0), Some(own(199)));
        assert_eq!(at(38), Some(own(199)));
        assert_eq!(at(39), Some(inlined));
        assert_eq!(at(73), Some(inlined));
        assert_eq!(at(74), Some(own(273)));
        assert_eq!(at(500), Some(own(199)));
        // Its InliningPositions entry: where the call was, in the caller.
        assert_eq!(SourcePosition::decode(466), own(232));
    }

    #[test]
    fn external_positions_are_not_script_offsets() {
        assert_eq!(script_offset(((41 + 1) << 1) | 1), None);
        assert_eq!(script_offset(0), None);
        assert_eq!(script_offset((41 + 1) << 1), Some(41));
        // Inlining ids are stored plus one, above bit 31.
        let inlined = SourcePosition::decode(((41 + 1) << 1) | (3 << 31));
        assert_eq!(
            (inlined.script_offset, inlined.inlining),
            (Some(41), Some(2))
        );
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        let source: Vec<u16> = "ab\ncd\n\nefg".encode_utf16().collect();
        let ends = line_ends(&source);
        assert_eq!(ends, vec![2, 5, 6, 10]);
        let at = |offset| line_column(&ends, offset).map(|p| (p.line, p.column));
        assert_eq!(at(0), Some((1, 1)));
        assert_eq!(at(2), Some((1, 3)));
        assert_eq!(at(3), Some((2, 1)));
        assert_eq!(at(7), Some((4, 1)));
        assert_eq!(at(9), Some((4, 3)));
        assert_eq!(at(11), None);
    }
}
