//! What an installed tracer carries besides its code: the version text
//! (`tracer --version`), and the man page and shell completions that
//! packages generate from the CLI itself (`tracer generate`, hidden).

pub mod generate;
pub mod version;
