//! asyncio Tasks, the userspace half. [`find_current_tasks`] finds the
//! `_asyncio` module's `current_tasks` dict (3.8–3.13) once asyncio is
//! imported, for the kernel to scan at each event; [`task_info`] turns the
//! task the kernel found (its name object's first bytes, its coroutine's
//! code) into a name and a coroutine name, and (3.14+) the chain of tasks
//! awaiting it.

use tracer_common::{AWAITED_BY_SET, PyTask, python::dict_layout};

use super::{CodeReader, PythonProcess, asyncio_debug::AsyncioOffsets, text::str_in_bytes};
use crate::{
    procfs::memory::{ProcessMemory, i64_at, u64_at},
    trace::TaskInfo,
};

/// `PyModuleObject.md_dict`.
const MODULE_DICT: u64 = 16;
/// `PyObject.ob_type` and `PyTypeObject.tp_name`.
const OB_TYPE: u32 = 8;
const TP_NAME: u64 = 24;
/// `PyLongObject`: the size (≤3.11: signed digit count; 3.12+: `lv_tag`,
/// digit count << 3 | sign) and the 30-bit digits.
const LONG_SIZE: u32 = 16;
const LONG_DIGITS: usize = 24;
/// Entries of a dict read at most (sys.modules has a few hundred).
const MAX_DICT_ENTRIES: u64 = 1 << 16;
/// Awaiting tasks followed at most, and the slots of a set of them read.
const MAX_AWAITED_BY: usize = 16;
const MAX_SET_SLOTS: u64 = 64;
/// `PySetObject.mask` and `.table`; a slot is (key, hash).
const SET_MASK: u64 = 32;
const SET_TABLE: u64 = 40;
/// Bytes of a name object read.
const NAME_BYTES: usize = tracer_common::PY_TASK_NAME_BYTES;

/// The address of `_asyncio`'s `current_tasks` dict, `{loop: task}`:
/// `sys.modules["_asyncio"].__dict__["_current_tasks"]`. `None` before
/// asyncio is imported, or where tasks are found otherwise (3.14+).
pub fn find_current_tasks(python: &PythonProcess) -> Option<u64> {
    let tasks = &python.layout.tasks;
    if tasks.dict_layout == 0 {
        return None;
    }
    let memory = &python.memory;
    let frames = &python.layout.frames;
    let interp = memory.read_u64(python.runtime + u64::from(frames.runtime_interpreters_head))?;
    let modules = memory.read_u64(interp + u64::from(tasks.interp_modules))?;
    let module = dict_get(python, modules, "_asyncio")?;
    let globals = memory.read_u64(module + MODULE_DICT)?;
    dict_get(python, globals, "_current_tasks")
}

/// The value of the str key `key` in the dict at `dict`.
fn dict_get(python: &PythonProcess, dict: u64, key: &str) -> Option<u64> {
    let text = &python.layout.text;
    dict_entries(&python.memory, python.layout.tasks.dict_layout, dict)?
        .into_iter()
        .find(|&(k, _)| super::text::read_str(&python.memory, text, k).as_deref() == Some(key))
        .map(|(_, value)| value)
}

/// The (key, value) pairs of a combined-table dict (every dict here: module
/// namespaces, `sys.modules`, the dict of tasks).
fn dict_entries(memory: &ProcessMemory, layout: u32, dict: u64) -> Option<Vec<(u64, u64)>> {
    let keys = memory.read_u64(dict + tracer_common::python::DICT_MA_KEYS)?;
    let header: [u8; 40] = memory.read_array(keys)?;
    let (entries, count, entry_size) = match layout {
        dict_layout::SIZED => {
            let size = u64_at(&header, 8)?;
            let index_bytes = match size {
                0..=0xff => 1,
                0x100..=0xffff => 2,
                0x1_0000..=0xffff_ffff => 4,
                _ => 8,
            };
            (keys + 40 + size * index_bytes, u64_at(&header, 32)?, 24)
        }
        dict_layout::LOG2 => {
            // dk_kind 0 is "general" (hash, key, value); str-keyed dicts
            // leave the hash out.
            let entry_size = if header[10] == 0 { 24 } else { 16 };
            let index_bytes = 1u64 << (header[9] & 31);
            (keys + 32 + index_bytes, u64_at(&header, 24)?, entry_size)
        }
        _ => return None,
    };
    let count = count.min(MAX_DICT_ENTRIES);
    let bytes = memory.read_vec(entries, usize::try_from(count * entry_size).ok()?)?;
    let key_at = entry_size as usize - 16;
    Some(
        bytes
            .chunks_exact(entry_size as usize)
            .filter_map(|entry| {
                let key = u64_at(entry, key_at as u32)?;
                let value = u64_at(entry, key_at as u32 + 8)?;
                (key != 0 && value != 0).then_some((key, value))
            })
            .collect(),
    )
}

/// The task the kernel found at an event, named; `None` when none ran.
pub fn task_info(python: &PythonProcess, code: &mut CodeReader, raw: &PyTask) -> Option<TaskInfo> {
    if raw.task == 0 {
        return None;
    }
    let coro = tracer_common::PyFrame {
        code: raw.coro_code,
        lasti: -1,
        flags: 0,
    };
    // The kernel copies only the header of a name object near the end of
    // its mapping: then the name is read from the task now.
    let name = task_name(python, &raw.name)
        .or_else(|| name_at(python, raw.task, python.task_name_offset()))
        .unwrap_or_else(|| "?".to_string());
    let awaited_by = match &python.asyncio {
        Some(asyncio) => awaited_by(python, asyncio, raw),
        None => Vec::new(),
    };
    Some(TaskInfo {
        name,
        coro: code
            .frame(python, &coro)
            .map_or_else(|| "?".to_string(), |frame| frame.function),
        awaited_by,
    })
}

/// The names of the tasks awaiting the task, nearest first: those the
/// kernel followed at the event, then (past a set of awaiters, or deeper)
/// from memory now; they wait on it, so they are still there.
fn awaited_by(python: &PythonProcess, a: &AsyncioOffsets, raw: &PyTask) -> Vec<String> {
    let mut chain = Vec::new();
    let mut last = None;
    for &entry in &raw.awaited_by {
        let awaiter = match entry {
            0 => return chain,
            set if set & AWAITED_BY_SET != 0 => first_task_in(python, a, set & !AWAITED_BY_SET),
            task => is_task(python, a, task).then_some(task),
        };
        let Some((awaiter, name)) =
            awaiter.and_then(|t| Some((t, name_at(python, t, a.task_name)?)))
        else {
            return chain;
        };
        chain.push(name);
        last = Some(awaiter);
        if entry & AWAITED_BY_SET != 0 {
            break;
        }
    }
    while let Some(task) = last.filter(|_| chain.len() < MAX_AWAITED_BY) {
        last = awaiter(python, a, task);
        if let Some(name) = last.and_then(|t| name_at(python, t, a.task_name)) {
            chain.push(name);
        }
    }
    chain
}

/// The task awaiting `task`: its `task_awaited_by`, or (awaited by several)
/// the first task in that set. `None` when nothing awaits it, or only a
/// Future that is not a task (`gather`'s).
fn awaiter(python: &PythonProcess, a: &AsyncioOffsets, task: u64) -> Option<u64> {
    let memory = &python.memory;
    let awaited_by = memory.read_u64(task + u64::from(a.task_awaited_by))?;
    if awaited_by == 0 {
        return None;
    }
    let [is_set]: [u8; 1] = memory.read_array(task + u64::from(a.task_awaited_by_is_set))?;
    if is_set == 0 {
        is_task(python, a, awaited_by).then_some(awaited_by)
    } else {
        first_task_in(python, a, awaited_by)
    }
}

fn is_task(python: &PythonProcess, a: &AsyncioOffsets, object: u64) -> bool {
    python.memory.read_array(object + u64::from(a.task_is_task)) == Some([1u8])
}

/// The first task in the set at `set` (`PySetObject`).
fn first_task_in(python: &PythonProcess, a: &AsyncioOffsets, set: u64) -> Option<u64> {
    let memory = &python.memory;
    let mask = memory.read_u64(set + SET_MASK)?.min(MAX_SET_SLOTS - 1);
    let table = memory.read_u64(set + SET_TABLE)?;
    let slots = memory.read_vec(table, usize::try_from((mask + 1) * 16).ok()?)?;
    slots
        .chunks_exact(16)
        .filter_map(|slot| u64_at(slot, 0))
        .find(|&key| {
            key != 0 && is_task(python, a, key) && name_at(python, key, a.task_name).is_some()
        })
}

/// The name of the task at `task`, read from memory (`name_offset`: where
/// the task holds it).
fn name_at(python: &PythonProcess, task: u64, name_offset: u32) -> Option<String> {
    let name = python.memory.read_u64(task + u64::from(name_offset))?;
    // A small object near the end of its mapping: the longest read that
    // stays inside it.
    let bytes = (32..=NAME_BYTES)
        .rev()
        .step_by(8)
        .find_map(|size| python.memory.read_vec(name, size))?;
    task_name(python, &bytes)
}

/// A task's name from the first bytes of its name object: a `str`, or the
/// int N of a task 3.12/3.13 have not named yet (`Task-N` once asked).
fn task_name(python: &PythonProcess, bytes: &[u8]) -> Option<String> {
    let kind = type_name(&python.memory, u64_at(bytes, OB_TYPE)?)?;
    match kind.as_str() {
        "str" => str_in_bytes(bytes, &python.layout.text),
        "int" => long_in_bytes(bytes, python.minor()).map(|n| format!("Task-{n}")),
        _ => None,
    }
}

/// `tp_name` of the type object at `address` (types are static: they are
/// still there after the event).
fn type_name(memory: &ProcessMemory, address: u64) -> Option<String> {
    let name = memory.read_u64(address + TP_NAME)?;
    let bytes: [u8; 16] = memory.read_array(name)?;
    let end = bytes.iter().position(|&b| b == 0)?;
    String::from_utf8(bytes[..end].to_vec()).ok()
}

/// A non-negative int of up to two 30-bit digits.
fn long_in_bytes(bytes: &[u8], minor: u32) -> Option<u64> {
    let size = i64_at(bytes, LONG_SIZE)?;
    let digits = if minor >= 12 { size >> 3 } else { size };
    if !(0..=2).contains(&digits) || (minor >= 12 && size & 3 == 2) {
        return None;
    }
    (0..digits as usize).try_fold(0u64, |value, i| {
        let start = LONG_DIGITS + 4 * i;
        let digit = u32::from_le_bytes(bytes.get(start..start + 4)?.try_into().ok()?);
        Some(value | u64::from(digit & 0x3fff_ffff) << (30 * i))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(size: i64, digits: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 16];
        bytes.extend(size.to_le_bytes());
        bytes.extend(digits.iter().flat_map(|d| d.to_le_bytes()));
        bytes
    }

    #[test]
    fn reads_small_ints_of_each_layout() {
        assert_eq!(long_in_bytes(&long(1, &[42]), 11), Some(42));
        assert_eq!(long_in_bytes(&long(1 << 3, &[42]), 12), Some(42));
        assert_eq!(
            long_in_bytes(&long(2 << 3, &[5, 1]), 13),
            Some(5 + (1 << 30))
        );
        // Zero: no digits (3.12+ tags it with sign 1).
        assert_eq!(long_in_bytes(&long(1, &[]), 12), Some(0));
        // Negative: not a task number.
        assert_eq!(long_in_bytes(&long(1 << 3 | 2, &[3]), 12), None);
        assert_eq!(long_in_bytes(&long(-1, &[3]), 10), None);
    }
}
