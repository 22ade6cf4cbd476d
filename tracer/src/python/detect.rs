//! Is a process running CPython 3.8–3.14, and if so, where is its runtime
//! and how are its structs laid out.

use std::ops::RangeInclusive;

use tracer_common::{PyOffsets, PyProcess, python::PyTaskOffsets};

use super::{
    PythonError,
    asyncio_debug::{AsyncioOffsets, read_asyncio_offsets},
    debug_offsets::read_debug_offsets,
    image::find_image,
    offsets::{VersionLayout, known_layout},
};
use crate::procfs::memory::ProcessMemory;

/// Set in the tracer's environment, the kernel times each asyncio Task
/// lookup, and the tracer says what they cost as it ends.
pub const TIME_TASK_LOOKUP: &str = "TRACER_TIME_TASK_LOOKUP";

/// Minor versions of CPython 3 whose frames can be read.
const SUPPORTED_MINORS: RangeInclusive<u32> = 8..=14;

/// A process running a CPython the tracer can read.
#[derive(Debug)]
pub struct PythonProcess {
    pub pid: u32,
    /// The ELF file holding the runtime: libpython3.X.so, or the executable.
    pub image_path: String,
    /// Address of `_PyRuntime`.
    pub runtime: u64,
    /// Address of `PyCode_Type`: the type of every code object.
    pub code_type: u64,
    pub(super) layout: VersionLayout,
    pub(super) memory: ProcessMemory,
    /// `_asyncio`'s dict of running tasks (3.8–3.13), once asyncio is
    /// imported.
    pub current_tasks: Option<u64>,
    /// `_asyncio`'s own description of its tasks (3.14+), once loaded.
    pub asyncio: Option<AsyncioOffsets>,
}

impl PythonProcess {
    /// X in 3.X.
    pub fn minor(&self) -> u32 {
        self.layout.frames.minor
    }

    /// Where a Task object holds its name (`TaskObj.task_name`).
    pub fn task_name_offset(&self) -> u32 {
        self.asyncio
            .as_ref()
            .map_or(self.layout.tasks.task_name, |asyncio| asyncio.task_name)
    }

    /// The `PY_PROCS` value: what the kernel needs to walk this process's
    /// Python frames.
    pub fn kernel_info(&self) -> PyProcess {
        let table = &self.layout.tasks;
        let tasks = match &self.asyncio {
            Some(asyncio) => PyTaskOffsets {
                current_tasks: 0,
                dict_layout: 0,
                tstate_running_task: asyncio.running_task,
                task_coro: asyncio.task_coro,
                task_name: asyncio.task_name,
                task_awaited_by: asyncio.task_awaited_by,
                task_awaited_by_is_set: asyncio.task_awaited_by_is_set,
                timed: 0,
                _pad: 0,
            },
            None => PyTaskOffsets {
                current_tasks: self.current_tasks.unwrap_or(0),
                dict_layout: table.dict_layout,
                tstate_running_task: PyOffsets::ABSENT,
                task_coro: table.task_coro,
                task_name: table.task_name,
                task_awaited_by: PyOffsets::ABSENT,
                task_awaited_by_is_set: PyOffsets::ABSENT,
                timed: 0,
                _pad: 0,
            },
        };
        let tasks = PyTaskOffsets {
            timed: u32::from(std::env::var_os(TIME_TASK_LOOKUP).is_some()),
            ..tasks
        };
        PyProcess {
            runtime: self.runtime,
            offsets: self.layout.frames,
            tasks,
        }
    }

    /// Whether what finds the running task is still to be found (asyncio
    /// not imported when the process was first looked at).
    pub fn lacks_tasks(&self) -> bool {
        if self.minor() >= 14 {
            self.asyncio.is_none()
        } else {
            self.layout.tasks.dict_layout != 0 && self.current_tasks.is_none()
        }
    }

    /// Looks for what finds the running task: `_asyncio`'s dict of them
    /// (3.8–3.13), or its debug offsets (3.14+).
    pub fn look_for_tasks(&mut self) {
        if self.minor() >= 14 {
            self.asyncio = read_asyncio_offsets(self.pid, &self.image_path);
        } else {
            self.current_tasks = super::find_current_tasks(self);
        }
    }
}

/// Finds the CPython runtime of process `pid`. `Ok(None)` when the process
/// runs no CPython, or a version other than 3.8–3.14 (said in a debug log).
pub fn detect(pid: u32) -> Result<Option<PythonProcess>, PythonError> {
    let Some(image) = find_image(pid)? else {
        log::debug!(
            "pid {pid} runs no CPython: no libpython3.X is mapped, and its executable exports no _PyRuntime"
        );
        return Ok(None);
    };
    let Some(minor) = image.minor else {
        log::debug!(
            "pid {pid}: cannot tell the CPython version of {} (no Py_Version, no version in its name)",
            image.path
        );
        return Ok(None);
    };
    if !SUPPORTED_MINORS.contains(&minor) {
        log::debug!(
            "pid {pid} runs CPython 3.{minor} ({}); Python frames are read for 3.8 to 3.14 only",
            image.path
        );
        return Ok(None);
    }
    let memory = ProcessMemory::open(pid).map_err(|source| PythonError::Memory { pid, source })?;
    let layout = match known_layout(minor) {
        Some(layout) => layout,
        None => read_debug_offsets(&memory, pid, image.runtime, minor)?,
    };
    let mut process = PythonProcess {
        pid,
        image_path: image.path,
        runtime: image.runtime,
        code_type: image.code_type,
        layout,
        memory,
        current_tasks: None,
        asyncio: None,
    };
    process.look_for_tasks();
    Ok(Some(process))
}
