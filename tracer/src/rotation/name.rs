//! Names of rotated report sets: their start time in UTC, so that a plain
//! listing sorts them (`2026-12-07T06-50-00.123Z`; no colons, which some
//! file systems and tools refuse).

/// The directory name of a period that started at `unix_ms`.
pub fn period_dir(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        unix_ms % 1000
    )
}

/// (year, month, day) of a count of days since 1970-01-01, by Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_names() {
        assert_eq!(period_dir(0), "1970-01-01T00-00-00.000Z");
        // date -u -d @1700000000: Tue Nov 14 22:13:20 UTC 2023.
        assert_eq!(period_dir(1_700_000_000_123), "2023-11-14T22-13-20.123Z");
        // A leap day.
        assert_eq!(period_dir(951_782_400_000), "2000-02-29T00-00-00.000Z");
    }
}
