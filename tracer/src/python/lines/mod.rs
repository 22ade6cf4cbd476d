//! Line numbers from a code object's line table: three formats over the
//! versions, each a pure function of the table bytes.

mod linetable;
mod lnotab;
mod locations;
#[cfg(test)]
mod test_tables;

/// How a version maps instruction offsets to lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// 3.8, 3.9: `co_lnotab`.
    Lnotab,
    /// 3.10: `co_linetable` of (offset delta, line delta) pairs.
    Linetable,
    /// 3.11+: the PEP 626/657 location table.
    Locations,
}

impl LineFormat {
    pub fn for_minor(minor: u32) -> Self {
        match minor {
            ..=9 => Self::Lnotab,
            10 => Self::Linetable,
            _ => Self::Locations,
        }
    }

    /// The line at `lasti` as the kernel reports it: a byte offset, except
    /// in 3.10, where it counts 2-byte code units. A negative `lasti` (a
    /// frame that has not started) is at the first line. `None`: the
    /// instruction has no line.
    pub fn line(self, table: &[u8], first_line: i32, lasti: i32) -> Option<u32> {
        let Ok(lasti) = u64::try_from(lasti) else {
            return u32::try_from(first_line).ok();
        };
        let first_line = i64::from(first_line);
        let line = match self {
            Self::Lnotab => lnotab::line_at(table, first_line, lasti),
            Self::Linetable => linetable::line_at(table, first_line, lasti * 2),
            Self::Locations => locations::line_at(table, first_line, lasti),
        }?;
        u32::try_from(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_version() {
        assert_eq!(LineFormat::for_minor(8), LineFormat::Lnotab);
        assert_eq!(LineFormat::for_minor(9), LineFormat::Lnotab);
        assert_eq!(LineFormat::for_minor(10), LineFormat::Linetable);
        assert_eq!(LineFormat::for_minor(13), LineFormat::Locations);
    }

    #[test]
    fn a_frame_that_has_not_started_is_at_its_first_line() {
        for format in [
            LineFormat::Lnotab,
            LineFormat::Linetable,
            LineFormat::Locations,
        ] {
            assert_eq!(format.line(&[], 42, -1), Some(42));
            assert_eq!(format.line(&[], 42, -2), Some(42));
        }
    }

    #[test]
    fn lasti_counts_code_units_in_3_10() {
        // (offset delta 4, line +1), (4, +1): bytes 4..8 are line 3.
        let table = [4, 1, 4, 1];
        assert_eq!(LineFormat::Linetable.line(&table, 1, 2), Some(3));
        assert_eq!(LineFormat::Lnotab.line(&[4, 1, 4, 1], 1, 2), Some(1));
    }
}
