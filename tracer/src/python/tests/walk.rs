//! The kernel's frame walk, done in userspace through /proc/PID/mem: from
//! `_PyRuntime` through the interpreters and their thread states to one OS
//! thread, then down its frame chain. Test-only: it proves, on live
//! processes, the offsets handed to the kernel.

use std::iter::successors;

use tracer_common::{
    PY_FRAME_ENTRY, PyFrame, PyOffsets,
    python::{FRAME_OWNED_BY_CSTACK, frame_layout},
};

use crate::python::PythonProcess;

/// Bounds against cycles in memory that changes while it is read.
const MAX_INTERPRETERS: usize = 16;
const MAX_THREADS: usize = 256;
const MAX_FRAMES: usize = 256;

pub struct WalkedThread {
    pub interpreters: usize,
    /// `tstate->thread_id` (`pthread_self()`).
    pub thread_id: u64,
    /// Innermost first, shim frames (owner == CSTACK) left out; in 3.11,
    /// `is_entry` frames are flagged PY_FRAME_ENTRY.
    pub frames: Vec<PyFrame>,
}

/// Walks the thread with kernel id `tid` (matched by `native_thread_id`,
/// 3.11+) or `pthread_self()` value `pthread` (by `thread_id`, ≤3.10).
pub fn walk_thread(python: &PythonProcess, tid: u32, pthread: u64) -> Option<WalkedThread> {
    let o = python.kernel_info().offsets;
    let memory = &python.memory;
    let read = |base: u64, offset: u32| memory.read_u64(base + u64::from(offset));
    let list = |first: Option<u64>, next: u32| {
        successors(first.filter(|&a| a != 0), move |&a| {
            read(a, next).filter(|&a| a != 0)
        })
    };

    let interpreters: Vec<u64> = list(
        read(python.runtime, o.runtime_interpreters_head),
        o.interp_next,
    )
    .take(MAX_INTERPRETERS)
    .collect();
    let tstate = interpreters
        .iter()
        .flat_map(|&interp| {
            list(read(interp, o.interp_threads_head), o.tstate_next).take(MAX_THREADS)
        })
        .find(|&tstate| {
            if o.tstate_native_thread_id == PyOffsets::ABSENT {
                read(tstate, o.tstate_thread_id) == Some(pthread)
            } else {
                read(tstate, o.tstate_native_thread_id) == Some(u64::from(tid))
            }
        })?;
    let first = if o.tstate_frame == PyOffsets::ABSENT {
        read(read(tstate, o.tstate_cframe)?, o.cframe_current_frame)
    } else {
        read(tstate, o.tstate_frame)
    };

    let mut frames = Vec::new();
    for frame in list(first, o.frame_back).take(MAX_FRAMES) {
        let code = read(frame, o.frame_code)? & !7;
        let byte = |offset: u32| {
            memory
                .read_array(frame + u64::from(offset))
                .map(|[b]: [u8; 1]| b)
        };
        if o.frame_layout == frame_layout::FRAME_OBJECT {
            let lasti = memory
                .read_array(frame + u64::from(o.frame_instr))
                .map(i32::from_le_bytes)?;
            frames.push(PyFrame {
                code,
                lasti,
                flags: 0,
            });
            continue;
        }
        if byte(o.frame_owner)? >= FRAME_OWNED_BY_CSTACK {
            continue;
        }
        let instr = read(frame, o.frame_instr)?;
        let start = code + u64::from(o.code_adaptive);
        let lasti = i32::try_from(instr.wrapping_sub(start) as i64).ok()?;
        let entry = o.frame_is_entry != PyOffsets::ABSENT && byte(o.frame_is_entry)? != 0;
        let flags = if entry { PY_FRAME_ENTRY } else { 0 };
        frames.push(PyFrame { code, lasti, flags });
    }
    Some(WalkedThread {
        interpreters: interpreters.len(),
        thread_id: read(tstate, o.tstate_thread_id)?,
        frames,
    })
}
