//! CPython 3.14+ describes its asyncio Tasks for remote debuggers (`python
//! -m asyncio ps PID`) in the `_asyncio` module's `.AsyncioDebug` section,
//! `_Py_AsyncioModuleDebugOffsets`: where a Task keeps its name, coroutine
//! and awaiters, and where a thread state keeps the task running. Read from
//! the module's file once the target has loaded it: right for the exact
//! build, where a table would be a guess.

use object::{Object, ObjectSection, read::ReadCache};

use crate::procfs::memory::u64_at;
use crate::{
    procfs::maps::{Mapping, read_maps},
    unwind::ModuleFiles,
};

const SECTION: &str = ".AsyncioDebug";

/// Index (in u64 words) of each member used (`asyncio_task_object`,
/// `asyncio_interpreter_state`, `asyncio_thread_state`, each led by its
/// size).
mod word {
    pub const TASK_NAME: usize = 1;
    pub const TASK_AWAITED_BY: usize = 2;
    pub const TASK_IS_TASK: usize = 3;
    pub const TASK_AWAITED_BY_IS_SET: usize = 4;
    pub const TASK_CORO: usize = 5;
    pub const RUNNING_TASK: usize = 11;
    pub const COUNT: usize = RUNNING_TASK + 1;
}

/// Offsets larger than this are garbage, not a field.
const MAX_PLAUSIBLE_OFFSET: u64 = 1 << 20;

/// The asyncio layout of a 3.14+ process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncioOffsets {
    /// `TaskObj` fields: name, the awaiter (a task, or a set of them when
    /// `awaited_by_is_set`), `is_task` (a Task, not a plain Future), the
    /// coroutine.
    pub task_name: u32,
    pub task_awaited_by: u32,
    pub task_is_task: u32,
    pub task_awaited_by_is_set: u32,
    pub task_coro: u32,
    /// `_PyThreadStateImpl.asyncio_running_task`.
    pub running_task: u32,
}

/// The offsets from the `_asyncio` module process `pid` has loaded (or
/// from `image`, the interpreter, where `_asyncio` is built in); `None`
/// before asyncio is imported.
pub fn read_asyncio_offsets(pid: u32, image: &str) -> Option<AsyncioOffsets> {
    let maps = read_maps(pid).ok()?;
    let is_asyncio = |m: &&Mapping| {
        m.path
            .as_deref()
            .and_then(|p| p.rsplit('/').next())
            .is_some_and(|name| name.starts_with("_asyncio.") && name.ends_with(".so"))
    };
    let mapping = maps
        .iter()
        .filter(|m| m.is_file())
        .find(is_asyncio)
        .or_else(|| maps.iter().find(|m| m.path.as_deref() == Some(image)))?;
    let module = ModuleFiles::default().get(pid, mapping)?;
    let file = std::fs::File::open(module.readable_path()).ok()?;
    let cache = ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let data = elf.section_by_name(SECTION)?.data().ok()?;
    parse(data)
}

fn parse(bytes: &[u8]) -> Option<AsyncioOffsets> {
    let offset = |index: usize| {
        let value = u64_at(bytes, u32::try_from(index * 8).ok()?)?;
        u32::try_from(value)
            .ok()
            .filter(|_| value < MAX_PLAUSIBLE_OFFSET)
    };
    if bytes.len() < word::COUNT * 8 {
        return None;
    }
    Some(AsyncioOffsets {
        task_name: offset(word::TASK_NAME)?,
        task_awaited_by: offset(word::TASK_AWAITED_BY)?,
        task_is_task: offset(word::TASK_IS_TASK)?,
        task_awaited_by_is_set: offset(word::TASK_AWAITED_BY_IS_SET)?,
        task_coro: offset(word::TASK_CORO)?,
        running_task: offset(word::RUNNING_TASK)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_section_of_3_14_10() {
        // Debian's 3.14.10 `_asyncio.cpython-314-x86_64-linux-gnu.so`.
        let words: [u64; 13] = [
            168, 136, 96, 108, 109, 128, 152, 225_864, 10_880, 936, 864, 872, 880,
        ];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(
            parse(&bytes),
            Some(AsyncioOffsets {
                task_name: 136,
                task_awaited_by: 96,
                task_is_task: 108,
                task_awaited_by_is_set: 109,
                task_coro: 128,
                running_task: 872,
            })
        );
        assert_eq!(parse(&bytes[..64]), None);
    }
}
