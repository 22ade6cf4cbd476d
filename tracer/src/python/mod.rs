//! Python stacks, the userspace half. For a traced process, [`detect`] finds
//! the CPython runtime and the struct offsets of its version, which the
//! kernel needs to walk a thread's frames (`PythonProcess::kernel_info`, the
//! `PY_PROCS` value). The kernel sends each frame as a code object address
//! and a position; [`CodeReader`] turns that into `function (file:line)`.
//!
//! ```ignore
//! if let Some(python) = python::detect(pid)? {
//!     py_procs.insert(pid, python.kernel_info(), 0)?;
//!     let mut code = python::CodeReader::default();
//!     // for each PyFrame of an event:
//!     let frame: Option<PyFrameInfo> = code.frame(&python, &py_frame);
//! }
//! ```

mod asyncio_debug;
mod code;
mod debug_offsets;
mod detect;
mod error;
mod gil;
mod image;
mod lines;
mod offsets;
mod tasks;
#[cfg(test)]
mod tests;
mod text;

pub use code::{CodeReader, PyFrameInfo};
pub use debug_offsets::InterpreterOffsets;
pub use detect::{PythonProcess, detect};
pub use error::PythonError;
pub use tasks::{find_current_tasks, task_info};
