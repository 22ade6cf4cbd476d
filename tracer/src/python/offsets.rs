//! Struct offsets of CPython 3.8–3.12 (x86-64, glibc builds), measured on the
//! debug builds and verified on live processes (PYTHON-NOTES.md section 2;
//! the tests walk live interpreters with them). 3.13 publishes its own
//! offsets in the process: see `debug_offsets`.

use super::debug_offsets::InterpreterOffsets;
use tracer_common::{
    PyOffsets,
    python::{dict_layout, frame_layout},
};

/// Everything version-specific: what the kernel walks, and what userspace
/// reads of code and str objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionLayout {
    pub frames: PyOffsets,
    pub code: CodeLayout,
    pub text: StrLayout,
    pub tasks: TaskLayout,
    /// `PyInterpreterState`'s members as the target's `_Py_DebugOffsets`
    /// gives them (3.13+; `None` for the versions laid out by table).
    pub interpreter: Option<InterpreterOffsets>,
}

/// Where asyncio Tasks are found and what of them is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLayout {
    /// `PyInterpreterState.modules` / `.imports.modules` (`sys.modules`).
    pub interp_modules: u32,
    /// `TaskObj.task_coro` and `task_name` in `_asyncio`.
    pub task_coro: u32,
    pub task_name: u32,
    /// `tracer_common::python::dict_layout` of this version's dicts (0:
    /// the running task is not looked for in a dict).
    pub dict_layout: u32,
}

/// `PyCodeObject` fields userspace reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLayout {
    /// `co_filename` (str*).
    pub filename: u32,
    /// `co_qualname` (3.11+) or `co_name` (str*).
    pub name: u32,
    /// `co_firstlineno` (int).
    pub first_line: u32,
    /// `co_lnotab` (3.8, 3.9) or `co_linetable` (bytes*).
    pub line_table: u32,
}

/// Where a `str`'s characters start: compact ASCII strings right after a
/// `PyASCIIObject`, other compact strings after a `PyCompactUnicodeObject`,
/// whose end also holds the data pointer of legacy strings (≤3.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrLayout {
    pub ascii_size: u32,
    pub compact_size: u32,
}

const ABSENT: u32 = PyOffsets::ABSENT;

const PY38_FRAMES: PyOffsets = PyOffsets {
    minor: 8,
    frame_layout: frame_layout::FRAME_OBJECT,
    runtime_interpreters_head: 32,
    interp_next: 0,
    interp_threads_head: 8,
    tstate_next: 8,
    tstate_thread_id: 176,
    tstate_native_thread_id: ABSENT,
    tstate_frame: 24,
    tstate_cframe: ABSENT,
    cframe_current_frame: ABSENT,
    frame_back: 24,
    frame_code: 32,
    frame_instr: 104,
    frame_owner: ABSENT,
    frame_is_entry: ABSENT,
    code_adaptive: ABSENT,
    frame_gen: 96,
    coro_iframe: ABSENT,
    _pad: 0,
};

const PY311_FRAMES: PyOffsets = PyOffsets {
    minor: 11,
    frame_layout: frame_layout::INTERPRETER_FRAME,
    runtime_interpreters_head: 40,
    interp_next: 0,
    interp_threads_head: 16,
    tstate_next: 8,
    tstate_thread_id: 152,
    tstate_native_thread_id: 160,
    tstate_frame: ABSENT,
    tstate_cframe: 56,
    cframe_current_frame: 8,
    frame_back: 48,
    frame_code: 32,
    frame_instr: 56,
    frame_owner: 69,
    frame_is_entry: 68,
    code_adaptive: 184,
    frame_gen: ABSENT,
    coro_iframe: 80,
    _pad: 0,
};

const PY38_CODE: CodeLayout = CodeLayout {
    filename: 104,
    name: 112,
    first_line: 40,
    line_table: 120,
};

const PY311_CODE: CodeLayout = CodeLayout {
    filename: 112,
    name: 128,
    first_line: 72,
    line_table: 136,
};

const PY38_TEXT: StrLayout = StrLayout {
    ascii_size: 48,
    compact_size: 72,
};

const PY312_TEXT: StrLayout = StrLayout {
    ascii_size: 40,
    compact_size: 56,
};

impl TaskLayout {
    /// No task is looked for.
    pub const NONE: Self = Self {
        interp_modules: ABSENT,
        task_coro: ABSENT,
        task_name: ABSENT,
        dict_layout: 0,
    };
}

/// Task layouts of 3.8 to 3.13 (PYTHON-NOTES.md section 2); 3.13's frames
/// come from its debug offsets, its tasks from here.
pub fn task_layout(minor: u32) -> Option<TaskLayout> {
    let (interp_modules, task_coro, task_name) = match minor {
        8 => (56, 112, 120),
        9 => (856, 152, 160),
        10 => (856, 160, 168),
        11 => (888, 136, 144),
        12 => (944, 136, 144),
        13 => (7656, 120, 128),
        _ => return None,
    };
    Some(TaskLayout {
        interp_modules,
        task_coro,
        task_name,
        dict_layout: if minor <= 10 {
            dict_layout::SIZED
        } else {
            dict_layout::LOG2
        },
    })
}

/// The layout of 3.`minor`, for 3.8 to 3.12.
pub fn known_layout(minor: u32) -> Option<VersionLayout> {
    let tasks = task_layout(minor)?;
    let (frames, code, text) = match minor {
        8 => (PY38_FRAMES, PY38_CODE, PY38_TEXT),
        9 => (
            PyOffsets {
                minor,
                ..PY38_FRAMES
            },
            PY38_CODE,
            PY38_TEXT,
        ),
        10 => (
            PyOffsets {
                minor,
                frame_instr: 96,
                frame_gen: 88,
                ..PY38_FRAMES
            },
            PY38_CODE,
            PY38_TEXT,
        ),
        11 => (PY311_FRAMES, PY311_CODE, PY38_TEXT),
        12 => (
            PyOffsets {
                minor,
                interp_threads_head: 72,
                tstate_thread_id: 136,
                tstate_native_thread_id: 144,
                cframe_current_frame: 0,
                frame_back: 8,
                frame_code: 0,
                frame_owner: 70,
                frame_is_entry: ABSENT,
                code_adaptive: 192,
                coro_iframe: 72,
                ..PY311_FRAMES
            },
            CodeLayout {
                first_line: 68,
                ..PY311_CODE
            },
            PY312_TEXT,
        ),
        _ => return None,
    };
    Some(VersionLayout {
        frames,
        code,
        text,
        tasks,
        interpreter: None,
    })
}
