//! Long-running mode (`--rotate PERIOD` with `--output DIR`): every period,
//! and at once on SIGHUP, what was recorded since the last period becomes a
//! complete report set in a subdirectory of DIR named by its start time;
//! the recorder then lets go of it, so memory stays flat over hours.

pub mod counters;
pub mod name;
pub mod writer;
