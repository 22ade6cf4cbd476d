//! CPython 3.13+ describes its own struct offsets in `_Py_DebugOffsets`, the
//! first member of `_PyRuntime` (for debuggers and profilers). Reading them
//! from the target beats a table: they are right for the exact build.

use tracer_common::{PyOffsets, python::frame_layout};

use super::{
    PythonError,
    offsets::{CodeLayout, StrLayout, TaskLayout, VersionLayout, task_layout},
};
use crate::procfs::memory::{ProcessMemory, u64_at};

const COOKIE: &[u8; 8] = b"xdebugpy";

/// Index (in u64 words) of each member used; the struct is a cookie
/// followed by u64s (pycore_debug_offsets.h), and 3.14 added members.
struct Words {
    interpreters_head: usize,
    /// The members of `interpreter_state`, in order from [`INTERPRETER`].
    interpreter: &'static [&'static str],
    tstate_next: usize,
    tstate_current_frame: usize,
    tstate_thread_id: usize,
    tstate_native_thread_id: usize,
    frame_previous: usize,
    frame_executable: usize,
    frame_instr_ptr: usize,
    frame_owner: usize,
    code_filename: usize,
    code_qualname: usize,
    code_linetable: usize,
    code_firstlineno: usize,
    code_adaptive: usize,
    unicode_ascii_size: usize,
    /// `gen_object.gi_iframe` (3.14+).
    gen_iframe: Option<usize>,
}

const VERSION: usize = 1;
const FREE_THREADED: usize = 2;
/// Words read: up to and including the last one used by any version.
const COUNT: usize = 86;

/// Index of `interpreter_state.size`, the first of its members.
const INTERPRETER: usize = 6;

const WORDS_313: Words = Words {
    interpreters_head: 5,
    interpreter: &[
        "size",
        "id",
        "next",
        "threads_head",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
    ],
    tstate_next: 21,
    tstate_current_frame: 23,
    tstate_thread_id: 24,
    tstate_native_thread_id: 25,
    frame_previous: 29,
    frame_executable: 30,
    frame_instr_ptr: 31,
    frame_owner: 33,
    code_filename: 35,
    code_qualname: 37,
    code_linetable: 38,
    code_firstlineno: 39,
    code_adaptive: 43,
    unicode_ascii_size: 70,
    gen_iframe: None,
};

/// 3.14 added `interpreter_state.threads_main`, `code_object_generation`,
/// `tlbc_generation`, `interpreter_frame.stackpointer`, `tlbc_index`,
/// `code_object.co_tlbc`, `set_object`, `gen_object`, ...
const WORDS_314: Words = Words {
    interpreters_head: 5,
    interpreter: &[
        "size",
        "id",
        "next",
        "threads_head",
        "threads_main",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
        "code_object_generation",
        "tlbc_generation",
    ],
    tstate_next: 24,
    tstate_current_frame: 26,
    tstate_thread_id: 27,
    tstate_native_thread_id: 28,
    frame_previous: 32,
    frame_executable: 33,
    frame_instr_ptr: 34,
    frame_owner: 36,
    code_filename: 40,
    code_qualname: 42,
    code_linetable: 43,
    code_firstlineno: 44,
    code_adaptive: 48,
    unicode_ascii_size: 80,
    gen_iframe: Some(85),
};

/// Offsets larger than this are garbage, not a field of a CPython struct.
const MAX_PLAUSIBLE_OFFSET: u64 = 1 << 20;

/// `_Py_DebugOffsets.interpreter_state` (3.13+): offsets in
/// `PyInterpreterState`, as the target's build has them. Members a
/// version lacks, or that are 0 in a build with the GIL (`_gil.enabled`,
/// `tlbc_generation`: free-threaded only), are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpreterOffsets {
    /// `sizeof(PyInterpreterState)`.
    pub size: u64,
    pub id: u32,
    pub next: u32,
    pub threads_head: u32,
    /// `threads.main` (3.14+).
    pub threads_main: Option<u32>,
    pub gc: u32,
    /// `imports.modules` (`sys.modules`).
    pub imports_modules: u32,
    pub sysdict: u32,
    pub builtins: u32,
    /// `ceval.gil`: a pointer to the `struct _gil_runtime_state` the
    /// interpreter uses (the main interpreter's own `_gil`).
    pub ceval_gil: u32,
    /// `_gil`: the interpreter's own `struct _gil_runtime_state`.
    pub gil_runtime_state: u32,
    /// `_gil.enabled` (free-threaded builds).
    pub gil_runtime_state_enabled: Option<u32>,
    /// `_gil.locked` and `_gil.last_holder`, from the interpreter's start.
    pub gil_runtime_state_locked: u32,
    pub gil_runtime_state_holder: u32,
    /// `_code_object_generation` (3.14+).
    pub code_object_generation: Option<u32>,
    /// `tlbc_generation` (3.14+, free-threaded builds).
    pub tlbc_generation: Option<u32>,
}

impl InterpreterOffsets {
    /// `last_holder` (a `PyThreadState *`) inside `struct _gil_runtime_state`.
    pub fn gil_holder_in_gil(&self) -> u32 {
        self.gil_runtime_state_holder - self.gil_runtime_state
    }

    /// `locked` (an int) inside `struct _gil_runtime_state`.
    pub fn gil_locked_in_gil(&self) -> u32 {
        self.gil_runtime_state_locked - self.gil_runtime_state
    }
}

/// Reads `_Py_DebugOffsets` at `runtime` (`_PyRuntime`) and builds the
/// layout of 3.`minor` from it.
pub fn read_debug_offsets(
    memory: &ProcessMemory,
    pid: u32,
    runtime: u64,
    minor: u32,
) -> Result<VersionLayout, PythonError> {
    let mut bytes = [0; COUNT * 8];
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
    let version = raw(VERSION);
    if version >> 16 != u64::from(0x0300 | minor) {
        return Err(PythonError::DebugOffsetsVersion {
            found: version,
            minor,
        });
    }
    if raw(FREE_THREADED) != 0 {
        return Err(PythonError::FreeThreaded);
    }
    let w = if minor >= 14 { &WORDS_314 } else { &WORDS_313 };
    let offset = |index: usize, field: &'static str| {
        let value = raw(index);
        plausible(value).ok_or(PythonError::DebugOffsetsField { field, value })
    };
    let interpreter = interpreter_offsets(w, &raw)?;
    let coro_iframe = match w.gen_iframe {
        Some(index) => offset(index, "gen_object.gi_iframe")?,
        // Not in 3.13's block: PYTHON-NOTES.md section 2.
        None => 72,
    };
    let frames = PyOffsets {
        minor,
        frame_layout: frame_layout::INTERPRETER_FRAME,
        runtime_interpreters_head: offset(w.interpreters_head, "interpreters_head")?,
        interp_next: interpreter.next,
        interp_threads_head: interpreter.threads_head,
        tstate_next: offset(w.tstate_next, "thread_state.next")?,
        tstate_thread_id: offset(w.tstate_thread_id, "thread_id")?,
        tstate_native_thread_id: offset(w.tstate_native_thread_id, "native_thread_id")?,
        tstate_frame: offset(w.tstate_current_frame, "current_frame")?,
        tstate_cframe: PyOffsets::ABSENT,
        cframe_current_frame: PyOffsets::ABSENT,
        frame_back: offset(w.frame_previous, "interpreter_frame.previous")?,
        frame_code: offset(w.frame_executable, "executable")?,
        frame_instr: offset(w.frame_instr_ptr, "instr_ptr")?,
        frame_owner: offset(w.frame_owner, "owner")?,
        frame_is_entry: PyOffsets::ABSENT,
        code_adaptive: offset(w.code_adaptive, "co_code_adaptive")?,
        frame_gen: PyOffsets::ABSENT,
        coro_iframe,
        _pad: 0,
    };
    let code = CodeLayout {
        filename: offset(w.code_filename, "filename")?,
        name: offset(w.code_qualname, "qualname")?,
        first_line: offset(w.code_firstlineno, "firstlineno")?,
        line_table: offset(w.code_linetable, "linetable")?,
    };
    let ascii_size = offset(w.unicode_ascii_size, "asciiobject_size")?;
    // The block has no size for PyCompactUnicodeObject: since 3.12 it is
    // PyASCIIObject plus utf8_length and the utf8 pointer.
    let text = StrLayout {
        ascii_size,
        compact_size: ascii_size + 16,
    };
    // 3.13's tasks are in a dict (the table's layout); 3.14's in the thread
    // state, at offsets the `_asyncio` module gives (`asyncio_debug`).
    let tasks = TaskLayout {
        interp_modules: interpreter.imports_modules,
        ..task_layout(minor).unwrap_or(TaskLayout::NONE)
    };
    Ok(VersionLayout {
        frames,
        code,
        text,
        tasks,
        interpreter: Some(interpreter),
    })
}

/// The `interpreter_state` members of the block whose words `raw` reads.
fn interpreter_offsets(
    w: &Words,
    raw: &dyn Fn(usize) -> u64,
) -> Result<InterpreterOffsets, PythonError> {
    let word = |name: &'static str| {
        let index = w.interpreter.iter().position(|&n| n == name)?;
        Some((name, raw(INTERPRETER + index)))
    };
    let offset = |name: &'static str| -> Result<u32, PythonError> {
        let (field, value) = word(name).expect("a member of every version's block");
        plausible(value).ok_or(PythonError::DebugOffsetsField { field, value })
    };
    // A member this version lacks, or 0 (not in this build).
    let optional = |name: &'static str| -> Result<Option<u32>, PythonError> {
        match word(name) {
            None | Some((_, 0)) => Ok(None),
            Some((field, value)) => plausible(value)
                .map(Some)
                .ok_or(PythonError::DebugOffsetsField { field, value }),
        }
    };
    let size = word("size").map_or(0, |(_, value)| value);
    let gil = offset("gil_runtime_state")?;
    let locked = offset("gil_runtime_state_locked")?;
    let holder = offset("gil_runtime_state_holder")?;
    if locked < gil || holder < gil {
        return Err(PythonError::DebugOffsetsField {
            field: "gil_runtime_state_holder",
            value: u64::from(holder),
        });
    }
    Ok(InterpreterOffsets {
        size,
        id: offset("id")?,
        next: offset("next")?,
        threads_head: offset("threads_head")?,
        threads_main: optional("threads_main")?,
        gc: offset("gc")?,
        imports_modules: offset("imports_modules")?,
        sysdict: offset("sysdict")?,
        builtins: offset("builtins")?,
        ceval_gil: offset("ceval_gil")?,
        gil_runtime_state: gil,
        gil_runtime_state_enabled: optional("gil_runtime_state_enabled")?,
        gil_runtime_state_locked: locked,
        gil_runtime_state_holder: holder,
        code_object_generation: optional("code_object_generation")?,
        tlbc_generation: optional("tlbc_generation")?,
    })
}

/// `value` as an offset, if it can be one.
fn plausible(value: u64) -> Option<u32> {
    u32::try_from(value)
        .ok()
        .filter(|_| value < MAX_PLAUSIBLE_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block with `values` at their words and the rest zero.
    fn block(values: &[(usize, u64)]) -> Vec<u8> {
        let mut words = [0u64; COUNT];
        for &(index, value) in values {
            words[index] = value;
        }
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes[..8].copy_from_slice(COOKIE);
        bytes
    }

    /// 3.13.0's block, the words this module reads as measured live
    /// (PYTHON-NOTES.md section 3; interpreter_state read from pyenv's 3.13.0
    /// through ctypes).
    fn block_313() -> Vec<u8> {
        let w = &WORDS_313;
        block(&[
            (VERSION, 0x030d_00f0),
            (w.interpreters_head, 632),
            // interpreter_state: size, id, next, threads_head, gc,
            // imports_modules, sysdict, builtins, ceval_gil, _gil, its
            // enabled (0: not free-threaded), locked, last_holder.
            (INTERPRETER, 194_968),
            (INTERPRETER + 1, 7272),
            (INTERPRETER + 2, 7264),
            (INTERPRETER + 3, 7344),
            (INTERPRETER + 4, 7400),
            (INTERPRETER + 5, 7656),
            (INTERPRETER + 6, 7640),
            (INTERPRETER + 7, 7648),
            (INTERPRETER + 8, 16),
            (INTERPRETER + 9, 7752),
            (INTERPRETER + 11, 7768),
            (INTERPRETER + 12, 7760),
            (w.tstate_next, 8),
            (w.tstate_current_frame, 72),
            (w.tstate_thread_id, 152),
            (w.tstate_native_thread_id, 160),
            (w.frame_previous, 8),
            (w.frame_executable, 0),
            (w.frame_instr_ptr, 56),
            (w.frame_owner, 70),
            (w.code_filename, 112),
            (w.code_qualname, 128),
            (w.code_linetable, 136),
            (w.code_firstlineno, 68),
            (w.code_adaptive, 200),
            (w.unicode_ascii_size, 40),
        ])
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
        assert_eq!(layout.frames.coro_iframe, 72);
        assert_eq!(layout.code.name, 128);
        assert_eq!(layout.tasks.interp_modules, 7656);
        assert_eq!(layout.tasks.task_coro, 120);
        let interpreter = layout.interpreter.expect("3.13 describes its interpreter");
        assert_eq!(interpreter.next, 7264);
        assert_eq!(interpreter.threads_main, None);
        assert_eq!(interpreter.ceval_gil, 16);
        assert_eq!(
            (
                interpreter.gil_holder_in_gil(),
                interpreter.gil_locked_in_gil()
            ),
            (8, 16)
        );
        assert_eq!(interpreter.code_object_generation, None);
        assert_eq!(
            layout.text,
            StrLayout {
                ascii_size: 40,
                compact_size: 56
            }
        );
    }

    /// Debian's 3.14.10: the first 86 words of its block, read from the file.
    #[test]
    fn reads_the_3_14_block() {
        #[rustfmt::skip]
        let words_3_14_10: [u64; 86] = [
            // cookie, version, free_threaded
            0, 0x030e_0af0, 0,
            // runtime_state
            0x4d4c8, 784, 808,
            // interpreter_state
            0x37248, 7280, 7272, 7344, 7360, 7408, 7688, 7672, 7680, 16, 7784, 0, 7800, 7792, 7992, 0,
            // thread_state
            832, 0, 8, 16, 72, 152, 160, 232, 32,
            // interpreter_frame
            88, 8, 0, 56, 80, 74, 64, 0,
            // code_object
            216, 112, 120, 128, 136, 68, 52, 96, 104, 208, 0,
            // pyobject, type_object
            16, 8, 416, 24, 88, 168,
            // tuple_object, list_object
            40, 32, 16, 40, 24, 16,
            // set_object
            200, 24, 40, 32,
            // dict_object
            48, 32, 40,
            // float, long, bytes
            24, 16, 32, 16, 24, 40, 16, 32,
            // unicode_object
            64, 32, 16, 40,
            // gc
            264, 192,
            // gen_object (size, gi_name, gi_iframe)
            160, 24, 72,
        ];
        let mut bytes: Vec<u8> = words_3_14_10.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes[..8].copy_from_slice(COOKIE);
        let layout = layout_from_debug_offsets(&bytes, 14).expect("valid block");
        let f = &layout.frames;
        assert_eq!(
            (
                f.runtime_interpreters_head,
                f.interp_threads_head,
                f.tstate_next
            ),
            (808, 7344, 8)
        );
        assert_eq!((f.tstate_frame, f.tstate_native_thread_id), (72, 160));
        assert_eq!((f.frame_back, f.frame_code, f.frame_instr), (8, 0, 56));
        assert_eq!(
            (f.frame_owner, f.code_adaptive, f.coro_iframe),
            (74, 208, 72)
        );
        assert_eq!(layout.code.filename, 112);
        assert_eq!(layout.code.name, 128);
        assert_eq!(layout.code.first_line, 68);
        assert_eq!(layout.tasks.interp_modules, 7688);
        assert_eq!(layout.text.ascii_size, 40);
        let interpreter = layout.interpreter.expect("3.14 describes its interpreter");
        assert_eq!(
            interpreter,
            InterpreterOffsets {
                size: 0x37248,
                id: 7280,
                next: 7272,
                threads_head: 7344,
                threads_main: Some(7360),
                gc: 7408,
                imports_modules: 7688,
                sysdict: 7672,
                builtins: 7680,
                ceval_gil: 16,
                gil_runtime_state: 7784,
                gil_runtime_state_enabled: None,
                gil_runtime_state_locked: 7800,
                gil_runtime_state_holder: 7792,
                code_object_generation: Some(7992),
                tlbc_generation: None,
            }
        );
        assert_eq!(interpreter.gil_holder_in_gil(), 8);
        assert_eq!(interpreter.gil_locked_in_gil(), 16);
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
        bytes[FREE_THREADED * 8] = 1;
        let error = layout_from_debug_offsets(&bytes, 13).expect_err("free-threaded");
        assert!(matches!(error, PythonError::FreeThreaded));
    }

    #[test]
    fn rejects_implausible_offsets() {
        let mut bytes = block_313();
        bytes[WORDS_313.frame_owner * 8 + 7] = 0x7f;
        let error = layout_from_debug_offsets(&bytes, 13).expect_err("garbage offset");
        assert!(matches!(
            error,
            PythonError::DebugOffsetsField { field: "owner", .. }
        ));
    }
}
