//! Errors that decide the exit status. Library modules have their own
//! `thiserror` types with actionable messages; the CLI edge wraps them in
//! `anyhow` and maps a [`UsageError`] anywhere in the chain to exit status 2.

/// The command line is wrong (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit status: the command line is wrong.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: tracing could not be done.
pub const EXIT_FAILURE: i32 = 1;

/// The exit status for an error: 2 if it is a usage error, else 1.
pub fn exit_status(error: &anyhow::Error) -> i32 {
    if error.chain().any(|cause| cause.is::<UsageError>()) {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}
