//! The asyncio Task a Python thread runs, read at the event (python.rs
//! calls it after the frame walk): by the time userspace could look, the
//! task may have finished or another may run. The task is the one whose
//! coroutine is the outermost coroutine on the thread's frame chain, the
//! one the Task is stepping. 3.14 keeps the running task in the thread
//! state; 3.8–3.13 only in the `_asyncio` module's `current_tasks` dict,
//! `{loop: task}`, whose few entries are scanned here.

use aya_ebpf::helpers::generated::bpf_probe_read_user;
use tracer_common::{
    AWAITED_BY_SET, PY_AWAITED_BY, PY_TASK_NAME_BYTES, PyOffsets, PyProcess, PyTask, counter,
    python::{DICT_ENTRY_SIZE, DICT_ENTRY_VALUE, DICT_MA_KEYS, PyTaskOffsets, dict_layout},
};

use crate::{
    counters::add,
    helpers::now_ns,
    python::read,
    repeat::{Step, repeat},
};

/// Entries of `current_tasks` looked at, at most: one per running loop
/// (a dict of up to 5 entries keeps 8 slots), plus the deleted ones a
/// task switch leaves until the dict is resized.
const MAX_TASK_ENTRIES: u32 = 16;

/// Replaces the coroutine the walk left in `out.task` (0: none) with the
/// Task running it, its coroutine's code and the start of its name; `task`
/// stays 0 when no task runs it (a plain callback, or a coroutine driven
/// by hand).
///
/// # Safety
/// `out` must be valid for writes (a ring buffer reservation).
#[inline(never)]
pub unsafe fn read_task(process: &'static PyProcess, tstate: u64, out: *mut PyTask) {
    // SAFETY: the caller guarantees `out` is valid.
    let coro = unsafe { (*out).task };
    // SAFETY: as above.
    unsafe { (*out).task = 0 };
    let t = &process.tasks;
    if coro == 0 || t.task_coro == PyOffsets::ABSENT {
        return;
    }
    let task = if t.tstate_running_task != PyOffsets::ABSENT {
        read::<u64>(tstate + u64::from(t.tstate_running_task))
    } else {
        scan_current_tasks(t, coro)
    };
    let Some(task) = task.filter(|&task| task != 0) else {
        return;
    };
    if read::<u64>(task + u64::from(t.task_coro)) != Some(coro) {
        return;
    }
    let Some(name) = read::<u64>(task + u64::from(t.task_name)) else {
        return;
    };
    // SAFETY: `out` is valid; the helper checks the source.
    let copied = unsafe {
        let dst = (*out).name.as_mut_ptr().cast();
        bpf_probe_read_user(dst, PY_TASK_NAME_BYTES as u32, name as *const _) == 0
            // A small object near the end of its mapping: its header.
            || bpf_probe_read_user(dst, 32, name as *const _) == 0
    };
    if copied {
        // SAFETY: as above.
        unsafe {
            (*out).task = task;
            read_awaited_by(t, task, out);
        }
    }
}

/// [`read_task`], timed: its cost per event is measured with the tracer
/// that runs (`TRACER_TIME_TASK_LOOKUP`).
///
/// # Safety
/// As [`read_task`].
#[inline(never)]
pub unsafe fn timed_read_task(process: &'static PyProcess, tstate: u64, out: *mut PyTask) {
    let before = now_ns();
    let start = now_ns();
    // SAFETY: forwarded from the caller.
    unsafe { read_task(process, tstate, out) };
    let end = now_ns();
    add(counter::TASK_LOOKUPS, 1);
    add(counter::TASK_LOOKUP_NS, end.wrapping_sub(start));
    add(counter::TASK_LOOKUP_CLOCK_NS, start.wrapping_sub(before));
}

/// The chain of tasks awaiting `task`, as far as each is awaited by one
/// task: read now, since it unwinds as soon as `task` finishes.
///
/// # Safety
/// `out` must be valid for writes.
#[inline(always)]
unsafe fn read_awaited_by(t: &PyTaskOffsets, task: u64, out: *mut PyTask) {
    let absent = t.task_awaited_by == PyOffsets::ABSENT;
    let mut current = task;
    for i in 0..PY_AWAITED_BY {
        let mut next = 0;
        if current != 0 && !absent {
            let awaiter = read::<u64>(current + u64::from(t.task_awaited_by)).unwrap_or(0);
            let is_set = read::<u8>(current + u64::from(t.task_awaited_by_is_set)).unwrap_or(0);
            next = if is_set == 0 || awaiter == 0 {
                awaiter
            } else {
                awaiter | AWAITED_BY_SET
            };
        }
        // SAFETY: i < PY_AWAITED_BY; `out` is valid (caller).
        unsafe { (*out).awaited_by[i] = next };
        current = if next & AWAITED_BY_SET == 0 { next } else { 0 };
    }
}

/// The task in `current_tasks` whose coroutine is `coro`.
fn scan_current_tasks(t: &PyTaskOffsets, coro: u64) -> Option<u64> {
    if t.current_tasks == 0 {
        return None;
    }
    let keys: u64 = read(t.current_tasks + DICT_MA_KEYS)?;
    let (entries, count) = if t.dict_layout == dict_layout::SIZED {
        let size: u64 = read(keys + 8)?;
        let index_bytes = match size {
            0..=0xff => 1,
            0x100..=0xffff => 2,
            0x1_0000..=0xffff_ffff => 4,
            _ => 8,
        };
        (keys + 40 + size * index_bytes, read::<u64>(keys + 32)?)
    } else if t.dict_layout == dict_layout::LOG2 {
        let log2_index_bytes: u8 = read(keys + 9)?;
        (
            keys + 32 + (1u64 << (log2_index_bytes & 31)),
            read::<u64>(keys + 24)?,
        )
    } else {
        return None;
    };
    let mut scan = EntryScan {
        entry: entries,
        left: count,
        task_coro: u64::from(t.task_coro),
        coro,
        found: 0,
    };
    repeat(MAX_TASK_ENTRIES, &mut scan);
    (scan.found != 0).then_some(scan.found)
}

/// State of the scan along a dict's entries.
struct EntryScan {
    entry: u64,
    left: u64,
    task_coro: u64,
    coro: u64,
    found: u64,
}

impl Step for EntryScan {
    /// Checks one entry's value (a deleted entry holds NULL); true stops.
    #[inline(always)]
    fn step(&mut self) -> bool {
        if self.left == 0 {
            return true;
        }
        let task = read::<u64>(self.entry + DICT_ENTRY_VALUE).unwrap_or(0);
        if task != 0 && read::<u64>(task + self.task_coro) == Some(self.coro) {
            self.found = task;
            return true;
        }
        self.entry += DICT_ENTRY_SIZE;
        self.left -= 1;
        false
    }
}
