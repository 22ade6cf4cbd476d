//! CPython 3.13 describes its own struct offsets in `_Py_DebugOffsets`, the
//! first member of `_PyRuntime` (for debuggers and profilers). Reading them
//! from the target beats a table: they are right for the exact build.

use tracer_common::{PyOffsets, python::frame_layout};

use super::{
    PythonError,
    memory::{ProcessMemory, u64_at},
    offsets::{CodeLayout, StrLayout, TaskLayout, VersionLayout, task_layout},
};

const COOKIE: &[u8; 8] = b"xdebugpy";

/// Index (in u64 words) of each member of 3.13's `_Py_DebugOffsets` used
/// here; the struct is a cookie followed by u64s (pycore_runtime.h).
mod word {
    pub const VERSION: usize = 1;
    pub const FREE_THREADED: usize = 2;
    pub const INTERPRETERS_HEAD: usize = 5;
    pub const INTERP_NEXT: usize = 8;
    pub const INTERP_THREADS_HEAD: usize = 9;
    pub const TSTATE_NEXT: usize = 21;
    pub const TSTATE_CURRENT_FRAME: usize = 23;
    pub const TSTATE_THREAD_ID: usize = 24;
    pub const TSTATE_NATIVE_THREAD_ID: usize = 25;
    pub const FRAME_PREVIOUS: usize = 29;
    pub const FRAME_EXECUTABLE: usize = 30;
    pub const FRAME_INSTR_PTR: usize = 31;
    pub const FRAME_OWNER: usize = 33;
    pub const CODE_FILENAME: usize = 35;
    pub const CODE_QUALNAME: usize = 37;
    pub const CODE_LINETABLE: usize = 38;
    pub const CODE_FIRSTLINENO: usize = 39;
    pub const CODE_ADAPTIVE: usize = 43;
    pub const UNICODE_ASCII_SIZE: usize = 70;
    /// Words read: up to and including the last one used.
    pub const COUNT: usize = UNICODE_ASCII_SIZE + 1;
}

/// Offsets larger than this are garbage, not a field of a CPython struct.
const MAX_PLAUSIBLE_OFFSET: u64 = 1 << 20;

/// Reads `_Py_DebugOffsets` at `runtime` (`_PyRuntime`) and builds the
/// layout of 3.`minor` from it.
pub fn read_debug_offsets(
    memory: &ProcessMemory,
    pid: u32,
    runtime: u64,
    minor: u32,
) -> Result<VersionLayout, PythonError> {
    let mut bytes = [0; word::COUNT * 8];
    memory
        .read(runtime, &mut bytes)
        .map_err(|source| PythonError::ReadDebugOffsets {
            pid,
            address: runtime,
            source,
        })?;
    layout_from_debug_offsets(&bytes, minor)
}

pub fn layout_from_debug_offsets(bytes: &[u8], minor: u32) -> Result<VersionLayout, PythonError> {
    if bytes.get(..COOKIE.len()) != Some(COOKIE) {
        let found = bytes.get(..COOKIE.len()).unwrap_or(bytes);
        return Err(PythonError::DebugOffsetsCookie {
            found: String::from_utf8_lossy(found).into_owned(),
        });
    }
    let raw = |index: usize| u64_at(bytes, (index * 8) as u32).unwrap_or(u64::MAX);
    let version = raw(word::VERSION);
    if version >> 16 != u64::from(0x0300 | minor) {
        return Err(PythonError::DebugOffsetsVersion {
            found: version,
            minor,
        });
    }
    if raw(word::FREE_THREADED) != 0 {
        return Err(PythonError::FreeThreaded);
    }
    let offset = |index: usize, field: &'static str| {
        let value = raw(index);
        u32::try_from(value)
            .ok()
            .filter(|_| value < MAX_PLAUSIBLE_OFFSET)
            .ok_or(PythonError::DebugOffsetsField { field, value })
    };
    let frames = PyOffsets {
        minor,
        frame_layout: frame_layout::INTERPRETER_FRAME,
        runtime_interpreters_head: offset(word::INTERPRETERS_HEAD, "interpreters_head")?,
        interp_next: offset(word::INTERP_NEXT, "interpreter_state.next")?,
        interp_threads_head: offset(word::INTERP_THREADS_HEAD, "threads_head")?,
        tstate_next: offset(word::TSTATE_NEXT, "thread_state.next")?,
        tstate_thread_id: offset(word::TSTATE_THREAD_ID, "thread_id")?,
        tstate_native_thread_id: offset(word::TSTATE_NATIVE_THREAD_ID, "native_thread_id")?,
        tstate_frame: offset(word::TSTATE_CURRENT_FRAME, "current_frame")?,
        tstate_cframe: PyOffsets::ABSENT,
        cframe_current_frame: PyOffsets::ABSENT,
        frame_back: offset(word::FRAME_PREVIOUS, "interpreter_frame.previous")?,
        frame_code: offset(word::FRAME_EXECUTABLE, "executable")?,
        frame_instr: offset(word::FRAME_INSTR_PTR, "instr_ptr")?,
        frame_owner: offset(word::FRAME_OWNER, "owner")?,
        frame_is_entry: PyOffsets::ABSENT,
        code_adaptive: offset(word::CODE_ADAPTIVE, "co_code_adaptive")?,
        frame_gen: PyOffsets::ABSENT,
        // Not in 3.13's block: PYTHON-NOTES.md section 2.
        coro_iframe: 72,
        _pad: 0,
    };
    let code = CodeLayout {
        filename: offset(word::CODE_FILENAME, "filename")?,
        name: offset(word::CODE_QUALNAME, "qualname")?,
        first_line: offset(word::CODE_FIRSTLINENO, "firstlineno")?,
        line_table: offset(word::CODE_LINETABLE, "linetable")?,
    };
    let ascii_size = offset(word::UNICODE_ASCII_SIZE, "asciiobject_size")?;
    // The block has no size for PyCompactUnicodeObject: since 3.12 it is
    // PyASCIIObject plus utf8_length and the utf8 pointer.
    let text = StrLayout {
        ascii_size,
        compact_size: ascii_size + 16,
    };
    Ok(VersionLayout {
        frames,
        code,
        text,
        tasks: task_layout(minor).unwrap_or(TaskLayout::NONE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as 3.13.0 has it, with the words this module reads set to the
    /// values measured live (PYTHON-NOTES.md section 3) and the rest zero.
    fn block_313() -> Vec<u8> {
        let mut words = [0u64; word::COUNT];
        for (index, value) in [
            (word::VERSION, 0x030d_00f0),
            (word::INTERPRETERS_HEAD, 632),
            (word::INTERP_NEXT, 7264),
            (word::INTERP_THREADS_HEAD, 7344),
            (word::TSTATE_NEXT, 8),
            (word::TSTATE_CURRENT_FRAME, 72),
            (word::TSTATE_THREAD_ID, 152),
            (word::TSTATE_NATIVE_THREAD_ID, 160),
            (word::FRAME_PREVIOUS, 8),
            (word::FRAME_EXECUTABLE, 0),
            (word::FRAME_INSTR_PTR, 56),
            (word::FRAME_OWNER, 70),
            (word::CODE_FILENAME, 112),
            (word::CODE_QUALNAME, 128),
            (word::CODE_LINETABLE, 136),
            (word::CODE_FIRSTLINENO, 68),
            (word::CODE_ADAPTIVE, 200),
            (word::UNICODE_ASCII_SIZE, 40),
        ] {
            words[index] = value;
        }
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes[..8].copy_from_slice(COOKIE);
        bytes
    }

    #[test]
    fn builds_the_layout_from_the_block() {
        let layout = layout_from_debug_offsets(&block_313(), 13).expect("valid block");
        assert_eq!(layout.frames.runtime_interpreters_head, 632);
        assert_eq!(layout.frames.interp_threads_head, 7344);
        assert_eq!(layout.frames.tstate_frame, 72);
        assert_eq!(layout.frames.frame_owner, 70);
        assert_eq!(layout.frames.code_adaptive, 200);
        assert_eq!(layout.frames.tstate_cframe, PyOffsets::ABSENT);
        assert_eq!(layout.code.name, 128);
        assert_eq!(
            layout.text,
            StrLayout {
                ascii_size: 40,
                compact_size: 56
            }
        );
    }

    #[test]
    fn rejects_a_wrong_cookie() {
        let mut bytes = block_313();
        bytes[..8].copy_from_slice(b"notdebug");
        let error = layout_from_debug_offsets(&bytes, 13).expect_err("bad cookie");
        assert!(
            matches!(error, PythonError::DebugOffsetsCookie { ref found } if found == "notdebug")
        );
    }

    #[test]
    fn rejects_another_version_and_free_threading() {
        let error = layout_from_debug_offsets(&block_313(), 14).expect_err("3.13 block");
        assert!(matches!(
            error,
            PythonError::DebugOffsetsVersion {
                found: 0x030d_00f0,
                minor: 14
            }
        ));
        let mut bytes = block_313();
        bytes[word::FREE_THREADED * 8] = 1;
        let error = layout_from_debug_offsets(&bytes, 13).expect_err("free-threaded");
        assert!(matches!(error, PythonError::FreeThreaded));
    }

    #[test]
    fn rejects_implausible_offsets() {
        let mut bytes = block_313();
        bytes[word::FRAME_OWNER * 8 + 7] = 0x7f;
        let error = layout_from_debug_offsets(&bytes, 13).expect_err("garbage offset");
        assert!(matches!(
            error,
            PythonError::DebugOffsetsField { field: "owner", .. }
        ));
    }
}
