//! Recordings: `tracer --record FILE` saves the finished [`Trace`] so that
//! `tracer report FILE` renders every report again later, elsewhere, without
//! root and without the target.
//!
//! A file is a fixed header, then the payload (integers little-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `\x89tracer\n` (the 0x89 and `\n` catch text-mode mangling) |
//! | 4 | format version, [`FORMAT_VERSION`] |
//! | 8 | payload length once decompressed |
//! | 8 | payload length as stored |
//! | … | zlib(postcard(Trace)) |
//!
//! Why postcard: it encodes the serde-derived `Trace` as it is (no schema to
//! keep in step), with varint integers and no field names, under a stable,
//! documented wire format, in a small crate with one tiny dependency
//! (bincode, the other candidate, is unmaintained since its 3.0). It is not
//! self-describing, so any change to `Trace` changes the format: bump
//! [`FORMAT_VERSION`] (the golden test in `decode.rs` fails until then). Why zlib: stacks repeat the same function names and paths (the
//! demo service's 9 s trace: 577 KB of postcard, 21 KB stored); flate2 is
//! already linked for blazesym; and its checksum rejects corrupt bytes
//! before they are decoded.
//!
//! [`Trace`]: crate::trace::Trace

mod checks;
mod decode;
mod encode;
mod format;
#[cfg(test)]
mod fuzz;
mod load;
pub mod report;
#[cfg(test)]
pub mod sample;

pub use decode::{Problem, decode};
pub use encode::{encode, save};
pub use format::FORMAT_VERSION;
pub use load::{RecordingError, load};
