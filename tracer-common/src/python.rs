//! What the kernel needs to read a CPython thread's frames: per traced Python
//! process, the address of `_PyRuntime` and the struct offsets of its version.
//! Userspace finds both (see tracer/src/python) and stores them in `PY_PROCS`.

/// `PyOffsets::frame_layout`: which frame struct the version uses.
pub mod frame_layout {
    /// 3.8–3.10: `PyFrameObject` chained by `f_back`; `f_lasti` is an int.
    pub const FRAME_OBJECT: u32 = 1;
    /// 3.11+: `_PyInterpreterFrame` chained by `previous`; the position is a
    /// pointer into the code's `co_code_adaptive`.
    pub const INTERPRETER_FRAME: u32 = 2;
}

/// Byte offsets in one CPython version (x86-64). An offset of
/// [`PyOffsets::ABSENT`] marks a field the version does not have.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyOffsets {
    /// Minor version (8 for 3.8, ...), for userspace and diagnostics.
    pub minor: u32,
    pub frame_layout: u32,
    /// `_PyRuntime.interpreters.head`.
    pub runtime_interpreters_head: u32,
    /// `PyInterpreterState.next`.
    pub interp_next: u32,
    /// `PyInterpreterState.tstate_head` / `.threads.head`.
    pub interp_threads_head: u32,
    /// `PyThreadState.next`.
    pub tstate_next: u32,
    /// `PyThreadState.thread_id` (`pthread_self()`, the thread's fs base).
    pub tstate_thread_id: u32,
    /// `PyThreadState.native_thread_id` (3.11+; else ABSENT).
    pub tstate_native_thread_id: u32,
    /// The frame the thread runs: `tstate->frame` (3.8–3.10),
    /// `tstate->current_frame` (3.13+); ABSENT when it is behind `cframe`.
    pub tstate_frame: u32,
    /// `tstate->cframe` (3.11, 3.12), then `cframe->current_frame`.
    pub tstate_cframe: u32,
    pub cframe_current_frame: u32,
    /// `f_back` / `previous`.
    pub frame_back: u32,
    /// `f_code` / `f_executable`.
    pub frame_code: u32,
    /// `f_lasti` (int, 3.8–3.10) or `prev_instr` / `instr_ptr` (pointer, 3.11+).
    pub frame_instr: u32,
    /// `owner` (char, 3.11+): 3 marks a C-stack shim frame (3.12+).
    pub frame_owner: u32,
    /// `is_entry` (bool, 3.11 only).
    pub frame_is_entry: u32,
    /// `PyCodeObject.co_code_adaptive` (3.11+): instruction offsets count
    /// from here.
    pub code_adaptive: u32,
    pub _pad: u32,
}

impl PyOffsets {
    pub const ABSENT: u32 = u32::MAX;

    /// Where the last frame field the walk reads ends: the frame walk reads
    /// this many bytes of a frame at once (one read per frame, not one per
    /// field), all inside the frame struct.
    pub fn frame_window(&self) -> u32 {
        let instr_size = if self.frame_layout == frame_layout::FRAME_OBJECT {
            4
        } else {
            8
        };
        // Plain compares: the kernel side runs this, and an array walked by
        // an iterator left reads of unwritten stack slots that Linux 6.1's
        // verifier refuses.
        let end = |offset: u32, size: u32| {
            if offset == Self::ABSENT {
                0
            } else {
                offset + size
            }
        };
        end(self.frame_back, 8)
            .max(end(self.frame_code, 8))
            .max(end(self.frame_instr, instr_size))
            .max(end(self.frame_owner, 1))
            .max(end(self.frame_is_entry, 1))
    }
}

/// `PY_PROCS` value: one traced Python process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyProcess {
    /// Address of `_PyRuntime` in the process.
    pub runtime: u64,
    pub offsets: PyOffsets,
}

/// `owner` value of a shim frame that CPython's C code pushes when it
/// enters the interpreter (3.12+).
pub const FRAME_OWNED_BY_CSTACK: u8 = 3;

const _: () = {
    assert!(core::mem::size_of::<PyOffsets>() == 18 * 4);
    assert!(core::mem::size_of::<PyProcess>() == 8 + 18 * 4);
};

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)] structs of integers with explicit padding.
    unsafe impl aya::Pod for super::PyProcess {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(layout: u32, back: u32, code: u32, instr: u32, owner: u32, entry: u32) -> PyOffsets {
        PyOffsets {
            frame_layout: layout,
            frame_back: back,
            frame_code: code,
            frame_instr: instr,
            frame_owner: owner,
            frame_is_entry: entry,
            ..PyOffsets::default()
        }
    }

    #[test]
    fn the_frame_window_ends_with_the_last_field_read() {
        const ABSENT: u32 = PyOffsets::ABSENT;
        // 3.10: f_lasti (an int) at 104 is the last.
        let frame_object = offsets(frame_layout::FRAME_OBJECT, 24, 32, 104, ABSENT, ABSENT);
        assert_eq!(frame_object.frame_window(), 108);
        // 3.11: owner (a char) at 69, after is_entry at 68.
        let interpreter = offsets(frame_layout::INTERPRETER_FRAME, 48, 32, 56, 69, 68);
        assert_eq!(interpreter.frame_window(), 70);
    }
}
