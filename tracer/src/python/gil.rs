//! The GIL of a CPython process (`struct _gil_runtime_state`): where it is,
//! so that the kernel tells a futex wait on it from other lock waits and
//! reads its holder, and which thread a holder (`PyThreadState *`) is.
//!
//! 3.8–3.11 keep one GIL in `_PyRuntime.ceval.gil`; 3.12+ one per
//! interpreter, found through the main interpreter's `ceval.gil` pointer.
//! 3.13+ say where in their `_Py_DebugOffsets` (`ceval_gil`, and
//! `last_holder` within the GIL); for the others, offsets measured on
//! pyenv's builds with their debug information (gdb `print
//! &((_PyRuntimeState*)0)->ceval.gil`). The struct is the same in every
//! version: `last_holder` at 8, 208 bytes in all (its futex words are in
//! the mutexes and condition variables at 32..208). Free-threaded builds
//! have no GIL, and are not read at all (`PythonError::FreeThreaded`).

use tracer_common::{PyOffsets, gil::GilState};

use super::{PythonProcess, debug_offsets::InterpreterOffsets};
use crate::procfs::status::proc_path;

/// `sizeof(struct _gil_runtime_state)` and `offsetof(.., last_holder)`
/// (the latter for the versions without debug offsets).
const GIL_LEN: u64 = 208;
const HOLDER_OFFSET: u64 = 8;

/// glibc x86-64: `struct pthread`'s `tid`. A `pthread_t` is the address of
/// that struct; 3.8–3.10 record only it (`PyThreadState.thread_id`).
const PTHREAD_TID_OFFSET: u64 = 0x2d0;

/// Where 3.`minor` keeps the GIL.
enum GilPlace {
    /// At this offset in `_PyRuntime`.
    Runtime(u64),
    /// Pointed to by this field of the main interpreter.
    InterpreterPointer(u64),
}

/// Where 3.`minor` keeps the GIL, and its holder's offset in it.
fn place(minor: u32, interpreter: Option<&InterpreterOffsets>) -> Option<(GilPlace, u64)> {
    if let Some(i) = interpreter {
        let holder = u64::from(i.gil_holder_in_gil());
        return Some((GilPlace::InterpreterPointer(u64::from(i.ceval_gil)), holder));
    }
    let place = match minor {
        8 => GilPlace::Runtime(1152),
        9 | 10 => GilPlace::Runtime(352),
        11 => GilPlace::Runtime(360),
        12 => GilPlace::InterpreterPointer(384),
        _ => return None,
    };
    Some((place, HOLDER_OFFSET))
}

impl PythonProcess {
    /// The GIL's place in this process, for the kernel (`GIL_STATES`).
    pub fn gil(&self) -> Option<GilState> {
        let (place, holder_offset) = place(self.minor(), self.layout.interpreter.as_ref())?;
        let start = match place {
            GilPlace::Runtime(offset) => self.runtime + offset,
            GilPlace::InterpreterPointer(offset) => {
                let head = self.layout.frames.runtime_interpreters_head;
                let interpreter = self.memory.read_u64(self.runtime + u64::from(head))?;
                self.memory.read_u64(interpreter + offset)?
            }
        };
        (start != 0).then_some(GilState {
            start,
            len: GIL_LEN,
            holder_offset,
        })
    }

    /// The thread (tid) of a `PyThreadState *`, read from its thread state:
    /// `native_thread_id` (3.11+), or the tid in the glibc thread its
    /// `thread_id` points to (3.8–3.10). None if it is not a live thread of
    /// the process.
    pub fn thread_of(&self, tstate: u64) -> Option<u32> {
        let o: &PyOffsets = &self.layout.frames;
        let tid = if o.tstate_native_thread_id != PyOffsets::ABSENT {
            let field = tstate + u64::from(o.tstate_native_thread_id);
            self.memory.read_u64(field)? as u32
        } else {
            let pthread = self
                .memory
                .read_u64(tstate + u64::from(o.tstate_thread_id))?;
            let bytes = self.memory.read_array::<4>(pthread + PTHREAD_TID_OFFSET)?;
            u32::from_le_bytes(bytes)
        };
        let alive = proc_path(self.pid, &format!("task/{tid}")).exists();
        (tid != 0 && alive).then_some(tid)
    }
}
