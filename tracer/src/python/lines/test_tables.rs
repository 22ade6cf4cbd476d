//! Line tables taken from real code objects, and what `dis` says of them.
//! The sample function (first line 1) is:
//!
//! ```python
//! def sample(items):
//!     total = 0
//!     for item in items:
//!         if item % 2:
//!             total += item
//!         else:
//!             total -= (
//!                 item
//!                 * 2
//!             )
//!     # ... 200 empty lines ...
//!     return total          # line 211
//! ```

/// (instruction byte offset, line) of `sample` in 3.8, 3.9 and 3.10, from
/// `dis.findlinestarts` (3.8, 3.9) and `co_lines()` (3.10).
pub const SAMPLE_LINES_38_TO_310: &[(u64, i64)] = &[
    (0, 2),
    (2, 2),
    (4, 3),
    (6, 3),
    (8, 3),
    (10, 3),
    (12, 4),
    (14, 4),
    (16, 4),
    (18, 4),
    (20, 5),
    (22, 5),
    (24, 5),
    (26, 5),
    (28, 5),
    (30, 7),
    (32, 8),
    (34, 9),
    (36, 8),
    (38, 7),
    (40, 7),
    (42, 7),
    (44, 211),
    (46, 211),
];

pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}
