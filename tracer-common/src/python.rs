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
    /// `f_gen` (3.8–3.10): the generator or coroutine that owns the frame.
    pub frame_gen: u32,
    /// Where a coroutine embeds its frame (`cr_iframe`, 3.11+): a frame owned
    /// by a generator belongs to the coroutine at `frame - coro_iframe`.
    pub coro_iframe: u32,
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
            .max(end(self.frame_gen, 8))
    }
}

/// Where the running asyncio Task of a thread is found, and its fields.
/// The task is taken only if its coroutine is the outermost coroutine on
/// the thread's frame chain: the one the Task is stepping right now.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyTaskOffsets {
    /// The `_asyncio` module's `current_tasks` dict, `{loop: task}`
    /// (3.8–3.13; 0: not found, e.g. asyncio not imported yet).
    pub current_tasks: u64,
    /// [`dict_layout`] of that dict's keys object (0: no dict to scan).
    pub dict_layout: u32,
    /// `PyThreadState` field holding the running task (3.14+:
    /// `asyncio_running_task`; else ABSENT).
    pub tstate_running_task: u32,
    /// `TaskObj.task_coro` and `task_name` (ABSENT: no task lookup).
    pub task_coro: u32,
    pub task_name: u32,
    /// `TaskObj.task_awaited_by` and `task_awaited_by_is_set` (3.14+; else
    /// ABSENT): who awaits the task, one task or a set of them.
    pub task_awaited_by: u32,
    pub task_awaited_by_is_set: u32,
    /// Non-zero: the kernel times each lookup (`counter::TASK_LOOKUP_*`).
    pub timed: u32,
    pub _pad: u32,
}

/// `PyTaskOffsets::dict_layout`: how a dict's entries are found.
pub mod dict_layout {
    /// 3.8–3.10: `dk_size` at 8, `dk_nentries` at 32, indices at 40 with
    /// 1/2/4/8 bytes each depending on the size.
    pub const SIZED: u32 = 1;
    /// 3.11+: `dk_log2_index_bytes` at 9, `dk_nentries` at 24, indices at 32.
    pub const LOG2: u32 = 2;
}

/// `PyDictObject.ma_keys`, the same in 3.8–3.14.
pub const DICT_MA_KEYS: u64 = 32;
/// A dict entry with any keys (`PyDictKeyEntry`: hash, key, value).
pub const DICT_ENTRY_SIZE: u64 = 24;
pub const DICT_ENTRY_VALUE: u64 = 16;

/// `PY_PROCS` value: one traced Python process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PyProcess {
    /// Address of `_PyRuntime` in the process.
    pub runtime: u64,
    pub offsets: PyOffsets,
    pub tasks: PyTaskOffsets,
}

/// `owner` value of a frame embedded in a generator or coroutine (3.11+).
pub const FRAME_OWNED_BY_GENERATOR: u8 = 1;

/// Lowest `owner` value of a shim frame that CPython's C code pushes when
/// it enters the interpreter: `FRAME_OWNED_BY_CSTACK` in 3.12/3.13; 3.14
/// has `FRAME_OWNED_BY_INTERPRETER` (3) and `FRAME_OWNED_BY_CSTACK` (4).
pub const FRAME_OWNED_BY_CSTACK: u8 = 3;

const _: () = {
    assert!(core::mem::size_of::<PyOffsets>() == 20 * 4);
    assert!(core::mem::size_of::<PyTaskOffsets>() == 8 + 8 * 4);
    assert!(core::mem::size_of::<PyProcess>() == 8 + 20 * 4 + 40);
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
            frame_gen: PyOffsets::ABSENT,
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
