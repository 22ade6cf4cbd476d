//! Why a process's Python runtime could not be read.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error(
        "cannot read /proc/{pid}/maps: {source} (is pid {pid} still running? reading another user's process needs root)"
    )]
    Maps { pid: u32, source: io::Error },

    #[error(
        "cannot open {path}, the CPython image of pid {pid}, as an ELF file (run with -v to see why)"
    )]
    OpenImage { pid: u32, path: String },

    #[error(
        "{path} is mapped by pid {pid} at an offset no ELF segment covers, so its load address is unknown"
    )]
    LoadBias { pid: u32, path: String },

    #[error("cannot read the dynamic symbols of {path}: {source}")]
    Symbols { path: String, source: object::Error },

    #[error("{path} exports _PyRuntime but not {symbol}, so its code objects cannot be recognised")]
    MissingSymbol { path: String, symbol: &'static str },

    #[error(
        "cannot open /proc/{pid}/mem: {source} (run as root, or grant CAP_SYS_PTRACE, to read the Python frames of pid {pid})"
    )]
    Memory { pid: u32, source: io::Error },

    #[error("cannot read _Py_DebugOffsets at {address:#x} in pid {pid}: {source}")]
    ReadDebugOffsets {
        pid: u32,
        address: u64,
        source: io::Error,
    },

    #[error(
        "_PyRuntime does not start with the _Py_DebugOffsets cookie \"xdebugpy\" (found {found:?}): this CPython 3.13 is built in a way the tracer cannot read"
    )]
    DebugOffsetsCookie { found: String },

    #[error(
        "_Py_DebugOffsets describe version {found:#x}, not 3.{minor} as the interpreter's image says"
    )]
    DebugOffsetsVersion { found: u64, minor: u32 },

    #[error(
        "_Py_DebugOffsets field {field} is {value}, not a plausible offset: the interpreter's memory is not what the tracer expects"
    )]
    DebugOffsetsField { field: &'static str, value: u64 },

    #[error(
        "the target runs a free-threaded CPython build, whose objects the tracer cannot read \
         yet (no Python frames or tasks; it has no GIL, so no wait is a GIL wait)"
    )]
    FreeThreaded,
}
