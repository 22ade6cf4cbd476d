//! CPython frames of the current thread, read at the event: the thread state
//! is found by matching the thread (its native id, or its fs base before
//! 3.11) in the interpreter's thread list — the "current thread state"
//! pointers are NULL while a thread has released the GIL, which is exactly
//! when it blocks — then the frame chain is walked. Only code addresses and
//! positions are read here; userspace turns them into names and lines.
//! The asyncio Task the thread runs is found here too (`tasks.rs`), from
//! the outermost coroutine the walk passes.

use core::ptr::addr_of_mut;

use aya_ebpf::{
    helpers::bpf_probe_read_user,
    macros::map,
    maps::{HashMap, LruHashMap},
};
use tracer_common::{
    KernelOffsets, MAX_PROCESSES, MAX_PY_FRAMES, MAX_THREADS, PY_FRAME_ENTRY, PY_FRAME_SHIM,
    PY_STATUS_NO_THREAD, PY_STATUS_NONE, PY_STATUS_OK, PY_STATUS_READ_ERROR, PY_STATUS_TRUNCATED,
    PyFrame, PyOffsets, PyProcess, PyStack,
    python::{FRAME_OWNED_BY_CSTACK, frame_layout},
};

use crate::{
    kernel,
    repeat::{Step, repeat},
};

/// Traced processes that run CPython, filled by userspace.
#[map]
pub static PY_PROCS: HashMap<u32, PyProcess> = HashMap::with_max_entries(MAX_PROCESSES, 0);

/// Thread id → its `PyThreadState`, found once by walking the thread list.
#[map]
static PY_THREADS: LruHashMap<u32, u64> = LruHashMap::with_max_entries(MAX_THREADS, 0);

/// Interpreters visited at most (subinterpreters are rare).
const MAX_INTERPRETERS: u32 = 4;

#[inline(always)]
pub fn read<T>(addr: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_user checks the address.
    unsafe { bpf_probe_read_user(addr as *const T) }.ok()
}

/// Forgets a thread's cached state (it exited).
pub fn forget_thread(tid: u32) {
    let _ = PY_THREADS.remove(tid);
}

/// Forgets a process (it exited; its pid will be reused).
pub fn forget_process(tgid: u32) {
    let _ = PY_PROCS.remove(tgid);
}

/// Thread states visited at most when looking for a thread, and turns of
/// the frame walk (one frame each, and one to see the chain's end).
/// Without `bpf_loop` (before Linux 5.17) the verifier checks every turn of
/// a loop: fewer.
#[cfg(not(feature = "bounded-loops"))]
const MAX_THREAD_WALK: u32 = 512;
#[cfg(not(feature = "bounded-loops"))]
const MAX_FRAME_WALK: u32 = MAX_PY_FRAMES as u32 + 1;
#[cfg(feature = "bounded-loops")]
const MAX_THREAD_WALK: u32 = 16;
#[cfg(feature = "bounded-loops")]
const MAX_FRAME_WALK: u32 = 24;

/// Bytes of a frame read at once, at most: every version's frame fields
/// lie in its first 112 bytes (see `PyOffsets::frame_window`).
pub const FRAME_WINDOW: usize = 128;

/// Fills `out` with the current thread's Python frames, innermost first.
/// `scratch` holds each frame's fields as they are read: memory of the
/// same ring-buffer record that the caller overwrites afterwards (on the
/// BPF stack the window took a quarter of what a call chain may use).
///
/// # Safety
/// `out` and `scratch` must be valid for writes (a ring buffer
/// reservation).
#[inline(never)]
pub unsafe fn read_stack(tgid: u32, tid: u32, out: *mut PyStack, scratch: *mut [u8; FRAME_WINDOW]) {
    // SAFETY: the caller guarantees `out` is writable.
    unsafe {
        (*out).len = 0;
        (*out).status = PY_STATUS_NONE;
        (*out).task.task = 0;
    }
    // SAFETY: map values are read-only here.
    let Some(process) = (unsafe { PY_PROCS.get(tgid) }) else {
        return;
    };
    let status = match thread_state(process, tid) {
        None => PY_STATUS_NO_THREAD,
        // SAFETY: forwarded from the caller.
        Some(tstate) => unsafe {
            let status = walk_frames(&process.offsets, tstate, out, scratch);
            let task = addr_of_mut!((*out).task);
            #[cfg(not(feature = "bounded-loops"))]
            if process.tasks.timed == 0 {
                crate::tasks::read_task(process, tstate, task);
            } else {
                crate::tasks::timed_read_task(process, tstate, task);
            }
            // Before bpf_loop the verifier checks the dict scan turn by
            // turn, and the programs no longer load in time (5.10 under
            // qemu: not in 120 s): no task there, not the walk's coroutine.
            #[cfg(feature = "bounded-loops")]
            {
                (*task).task = 0;
            }
            status
        },
    };
    // SAFETY: as above.
    unsafe { (*out).status = status };
}

fn thread_state(process: &'static PyProcess, tid: u32) -> Option<u64> {
    let o = &process.offsets;
    // SAFETY: map values are read-only here.
    if let Some(&tstate) = unsafe { PY_THREADS.get(tid) }
        && is_thread(o, tstate, tid)
    {
        return Some(tstate);
    }
    let mut interp: u64 = read(process.runtime + o.runtime_interpreters_head as u64)?;
    for _ in 0..MAX_INTERPRETERS {
        if interp == 0 {
            return None;
        }
        let mut search = ThreadSearch {
            offsets: o,
            tid,
            tstate: read(interp + o.interp_threads_head as u64)?,
            found: 0,
        };
        repeat(MAX_THREAD_WALK, &mut search);
        if search.found != 0 {
            let _ = PY_THREADS.insert(tid, search.found, 0);
            return Some(search.found);
        }
        interp = read(interp + o.interp_next as u64)?;
    }
    None
}

/// State of the walk along an interpreter's thread list.
struct ThreadSearch {
    offsets: &'static PyOffsets,
    tid: u32,
    tstate: u64,
    found: u64,
}

impl Step for ThreadSearch {
    /// Checks one thread state; true stops.
    #[inline(always)]
    fn step(&mut self) -> bool {
        if self.tstate == 0 {
            return true;
        }
        if is_thread(self.offsets, self.tstate, self.tid) {
            self.found = self.tstate;
            return true;
        }
        self.tstate = read(self.tstate + self.offsets.tstate_next as u64).unwrap_or(0);
        false
    }
}

/// Whether `tstate` belongs to the current thread (`tid`).
fn is_thread(o: &PyOffsets, tstate: u64, tid: u32) -> bool {
    // thread_id is pthread_self(): the thread's fs base (glibc and musl on
    // x86-64). Unlike native_thread_id (3.11+) it is the same seen from
    // inside a PID namespace (a container) and from the host.
    let offset = kernel::offset!(task_fsbase);
    if offset != KernelOffsets::MISSING {
        let task = kernel::current_task();
        let fsbase = kernel::read::<u64>(task, offset);
        return fsbase.is_some() && read::<u64>(tstate + o.tstate_thread_id as u64) == fsbase;
    }
    o.tstate_native_thread_id != PyOffsets::ABSENT
        && read::<u64>(tstate + o.tstate_native_thread_id as u64) == Some(tid as u64)
}

/// The frame the thread is running, or 0 when it runs no Python code.
fn current_frame(o: &PyOffsets, tstate: u64) -> Option<u64> {
    if o.tstate_cframe != PyOffsets::ABSENT {
        let cframe: u64 = read(tstate + o.tstate_cframe as u64)?;
        if cframe == 0 {
            return Some(0);
        }
        return read(cframe + o.cframe_current_frame as u64);
    }
    read(tstate + o.tstate_frame as u64)
}

/// State of the walk along a frame chain.
struct FrameWalk {
    offsets: &'static PyOffsets,
    frame: u64,
    n: u32,
    status: u32,
    out: *mut PyStack,
    /// The outermost coroutine passed so far, and its code object.
    coro: u64,
    coro_code: u64,
    /// The current frame's first `window_len` bytes.
    #[cfg(not(feature = "bounded-loops"))]
    window: *mut [u8; FRAME_WINDOW],
    window_len: u32,
}

impl FrameWalk {
    /// Reads the current frame's fields in one go.
    #[cfg(not(feature = "bounded-loops"))]
    fn read_frame(&mut self) -> bool {
        let len = self.window_len as usize;
        if len == 0 || len > FRAME_WINDOW {
            return false;
        }
        // SAFETY: `len` bytes fit in `window`; the helper checks the source.
        let ret = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_user(
                self.window.cast(),
                len as u32,
                self.frame as *const core::ffi::c_void,
            )
        };
        ret == 0
    }

    /// The field of type `T` at `offset` in the frame read last.
    #[cfg(not(feature = "bounded-loops"))]
    fn field<T: Copy>(&self, offset: u32) -> Option<T> {
        let offset = offset as usize;
        if offset > FRAME_WINDOW - core::mem::size_of::<T>()
            || offset + core::mem::size_of::<T>() > self.window_len as usize
        {
            return None;
        }
        // SAFETY: in bounds (checked above); unaligned reads are allowed.
        Some(unsafe {
            self.window
                .cast::<u8>()
                .add(offset)
                .cast::<T>()
                .read_unaligned()
        })
    }

    /// Nothing to read ahead: without `bpf_loop` the walk's turns are one
    /// function, whose loop-invariant `window + offset` the compiler
    /// computes once and keeps on the stack, where Linux 5.10 loses its
    /// bounds. So each field is read from the frame itself.
    #[cfg(feature = "bounded-loops")]
    fn read_frame(&mut self) -> bool {
        true
    }

    /// The field of type `T` at `offset` in the current frame.
    #[cfg(feature = "bounded-loops")]
    fn field<T: Copy>(&self, offset: u32) -> Option<T> {
        if offset as usize + core::mem::size_of::<T>() > self.window_len as usize {
            return None;
        }
        read(self.frame + u64::from(offset))
    }
}

/// Walks the chain from the current frame outwards; returns the status.
///
/// # Safety
/// `out` and `scratch` must be valid for writes.
unsafe fn walk_frames(
    o: &'static PyOffsets,
    tstate: u64,
    out: *mut PyStack,
    scratch: *mut [u8; FRAME_WINDOW],
) -> u32 {
    let Some(frame) = current_frame(o, tstate) else {
        return PY_STATUS_READ_ERROR;
    };
    // Unused there: each field is read from the frame itself.
    #[cfg(feature = "bounded-loops")]
    let _ = scratch;
    let mut walk = FrameWalk {
        offsets: o,
        frame,
        n: 0,
        status: PY_STATUS_TRUNCATED,
        out,
        coro: 0,
        coro_code: 0,
        #[cfg(not(feature = "bounded-loops"))]
        window: scratch,
        window_len: o.frame_window(),
    };
    repeat(MAX_FRAME_WALK, &mut walk);
    // SAFETY: `out` is writable (caller).
    unsafe {
        (*out).len = walk.n;
        // For `tasks::read_task`, which replaces them with the task.
        (*out).task.task = walk.coro;
        (*out).task.coro_code = walk.coro_code;
    }
    walk.status
}

impl Step for FrameWalk {
    /// Records one frame and moves to the caller; true stops.
    #[inline(always)]
    fn step(&mut self) -> bool {
        if self.frame == 0 {
            self.status = PY_STATUS_OK;
            return true;
        }
        let n = self.n as usize;
        if n >= MAX_PY_FRAMES {
            return true;
        }
        let o = self.offsets;
        // 3.14 tags the reference in the low bit (`_PyStackRef`); objects
        // are 8-aligned in every version.
        let code = if self.read_frame() {
            self.field::<u64>(o.frame_code).map(|code| code & !7)
        } else {
            None
        };
        let Some(code) = code else {
            self.status = PY_STATUS_READ_ERROR;
            return true;
        };
        let (lasti, flags) = if o.frame_layout == frame_layout::FRAME_OBJECT {
            // One C eval call per frame.
            (
                self.field::<i32>(o.frame_instr).unwrap_or(-1),
                PY_FRAME_ENTRY,
            )
        } else {
            interpreter_frame(self, code)
        };
        // Only for the task lookup, which the bounded-loops object has not:
        // two more values that differ path by path would keep the older
        // verifier from pruning its 24 turns.
        #[cfg(not(feature = "bounded-loops"))]
        if let Some(coro) = self.coroutine() {
            self.coro = coro;
            self.coro_code = code;
        }
        // SAFETY: n < MAX_PY_FRAMES (checked above); `out` is writable.
        unsafe { (*self.out).frames[n] = PyFrame { code, lasti, flags } };
        self.n += 1;
        self.frame = self.field(o.frame_back).unwrap_or(0);
        false
    }
}

#[cfg(not(feature = "bounded-loops"))]
impl FrameWalk {
    /// The coroutine (or generator) the current frame belongs to, if any.
    fn coroutine(&self) -> Option<u64> {
        let o = self.offsets;
        let coro = if o.frame_layout == frame_layout::FRAME_OBJECT {
            self.field::<u64>(o.frame_gen)?
        } else if self.field::<u8>(o.frame_owner)?
            == tracer_common::python::FRAME_OWNED_BY_GENERATOR
        {
            self.frame.wrapping_sub(o.coro_iframe as u64)
        } else {
            0
        };
        (coro != 0).then_some(coro)
    }
}

/// Position and flags of a 3.11+ frame; a shim frame is flagged as such.
fn interpreter_frame(walk: &FrameWalk, code: u64) -> (i32, u32) {
    let o = walk.offsets;
    let owner = walk.field::<u8>(o.frame_owner).unwrap_or(0);
    if owner >= FRAME_OWNED_BY_CSTACK {
        return (0, PY_FRAME_SHIM);
    }
    let instr = walk.field::<u64>(o.frame_instr).unwrap_or(0);
    let lasti = instr.wrapping_sub(code + o.code_adaptive as u64) as i32;
    let entry = walk.field::<u8>(o.frame_is_entry).unwrap_or(0) != 0;
    (lasti, if entry { PY_FRAME_ENTRY } else { 0 })
}
