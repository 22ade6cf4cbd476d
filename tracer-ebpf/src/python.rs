//! CPython frames of the current thread, read at the event: the thread state
//! is found by matching the thread (its native id, or its fs base before
//! 3.11) in the interpreter's thread list — the "current thread state"
//! pointers are NULL while a thread has released the GIL, which is exactly
//! when it blocks — then the frame chain is walked. Only code addresses and
//! positions are read here; userspace turns them into names and lines.

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated::bpf_loop},
    macros::map,
    maps::{HashMap, LruHashMap},
};
use tracer_common::{
    KernelOffsets, MAX_PROCESSES, MAX_PY_FRAMES, MAX_THREADS, PY_FRAME_ENTRY, PY_STATUS_NO_THREAD,
    PY_STATUS_NONE, PY_STATUS_OK, PY_STATUS_READ_ERROR, PY_STATUS_TRUNCATED, PyFrame, PyOffsets,
    PyProcess, PyStack,
    python::{FRAME_OWNED_BY_CSTACK, frame_layout},
};

use crate::kernel;

/// Traced processes that run CPython, filled by userspace.
#[map]
pub static PY_PROCS: HashMap<u32, PyProcess> = HashMap::with_max_entries(MAX_PROCESSES, 0);

/// Thread id → its `PyThreadState`, found once by walking the thread list.
#[map]
static PY_THREADS: LruHashMap<u32, u64> = LruHashMap::with_max_entries(MAX_THREADS, 0);

/// Thread states visited at most when looking for a thread.
const MAX_THREAD_WALK: u32 = 512;
/// Interpreters visited at most (subinterpreters are rare).
const MAX_INTERPRETERS: u32 = 4;

#[inline(always)]
fn read<T>(addr: u64) -> Option<T> {
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

/// Fills `out` with the current thread's Python frames, innermost first.
///
/// # Safety
/// `out` must be valid for writes (a ring buffer reservation).
#[inline(never)]
pub unsafe fn read_stack(tgid: u32, tid: u32, out: *mut PyStack) {
    // SAFETY: the caller guarantees `out` is writable.
    unsafe {
        (*out).len = 0;
        (*out).status = PY_STATUS_NONE;
    }
    // SAFETY: map values are read-only here.
    let Some(process) = (unsafe { PY_PROCS.get(tgid) }) else {
        return;
    };
    let status = match thread_state(process, tid) {
        None => PY_STATUS_NO_THREAD,
        // SAFETY: forwarded from the caller.
        Some(tstate) => unsafe { walk_frames(&process.offsets, tstate, out) },
    };
    // SAFETY: as above.
    unsafe { (*out).status = status };
}

fn thread_state(process: &PyProcess, tid: u32) -> Option<u64> {
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
            offsets: *o,
            tid,
            tstate: read(interp + o.interp_threads_head as u64)?,
            found: 0,
        };
        // SAFETY: the callback only touches `search`, which outlives the loop.
        unsafe {
            bpf_loop(
                MAX_THREAD_WALK,
                next_thread as *mut c_void,
                (&raw mut search).cast(),
                0,
            )
        };
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
    offsets: PyOffsets,
    tid: u32,
    tstate: u64,
    found: u64,
}

/// bpf_loop body: checks one thread state; returns 1 to stop.
extern "C" fn next_thread(_index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's ThreadSearch.
    let search = unsafe { &mut *ctx.cast::<ThreadSearch>() };
    if search.tstate == 0 {
        return 1;
    }
    if is_thread(&search.offsets, search.tstate, search.tid) {
        search.found = search.tstate;
        return 1;
    }
    search.tstate = read(search.tstate + search.offsets.tstate_next as u64).unwrap_or(0);
    0
}

/// Whether `tstate` belongs to the current thread (`tid`).
fn is_thread(o: &PyOffsets, tstate: u64, tid: u32) -> bool {
    // thread_id is pthread_self(): the thread's fs base (glibc and musl on
    // x86-64). Unlike native_thread_id (3.11+) it is the same seen from
    // inside a PID namespace (a container) and from the host.
    let offset = kernel::offsets().task_fsbase;
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

/// Bytes of a frame read at once, at most: every version's frame fields
/// lie in its first 112 bytes (see `PyOffsets::frame_window`).
const FRAME_WINDOW: usize = 128;

/// State of the walk along a frame chain.
struct FrameWalk {
    offsets: PyOffsets,
    frame: u64,
    n: u32,
    status: u32,
    out: *mut PyStack,
    /// The current frame's first `window_len` bytes.
    window: [u8; FRAME_WINDOW],
    window_len: u32,
}

impl FrameWalk {
    /// Reads the current frame's fields in one go.
    fn read_frame(&mut self) -> bool {
        let len = self.window_len as usize;
        if len == 0 || len > FRAME_WINDOW {
            return false;
        }
        // SAFETY: `len` bytes fit in `window`; the helper checks the source.
        let ret = unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_user(
                self.window.as_mut_ptr().cast(),
                len as u32,
                self.frame as *const c_void,
            )
        };
        ret == 0
    }

    /// The field of type `T` at `offset` in the frame read last.
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
                .as_ptr()
                .add(offset)
                .cast::<T>()
                .read_unaligned()
        })
    }
}

/// Walks the chain from the current frame outwards; returns the status.
///
/// # Safety
/// `out` must be valid for writes.
unsafe fn walk_frames(o: &PyOffsets, tstate: u64, out: *mut PyStack) -> u32 {
    let Some(frame) = current_frame(o, tstate) else {
        return PY_STATUS_READ_ERROR;
    };
    let mut walk = FrameWalk {
        offsets: *o,
        frame,
        n: 0,
        status: PY_STATUS_TRUNCATED,
        out,
        window: [0; FRAME_WINDOW],
        window_len: o.frame_window(),
    };
    // Shim frames are skipped, so allow for some beyond MAX_PY_FRAMES.
    // SAFETY: the callback only touches `walk` and `out` (valid, caller).
    unsafe {
        bpf_loop(
            (MAX_PY_FRAMES * 2) as u32,
            next_frame as *mut c_void,
            (&raw mut walk).cast(),
            0,
        );
        (*out).len = walk.n;
    }
    walk.status
}

/// bpf_loop body: records one frame and moves to the caller; 1 stops.
extern "C" fn next_frame(_index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer to the caller's FrameWalk.
    let walk = unsafe { &mut *ctx.cast::<FrameWalk>() };
    if walk.frame == 0 {
        walk.status = PY_STATUS_OK;
        return 1;
    }
    let n = walk.n as usize;
    if n >= MAX_PY_FRAMES {
        return 1;
    }
    let o = walk.offsets;
    let code = if walk.read_frame() {
        walk.field::<u64>(o.frame_code)
    } else {
        None
    };
    let Some(code) = code else {
        walk.status = PY_STATUS_READ_ERROR;
        return 1;
    };
    let entry = if o.frame_layout == frame_layout::FRAME_OBJECT {
        // One C eval call per frame.
        Some((
            walk.field::<i32>(o.frame_instr).unwrap_or(-1),
            PY_FRAME_ENTRY,
        ))
    } else {
        interpreter_frame(walk, code, n)
    };
    if let Some((lasti, flags)) = entry {
        // SAFETY: n < MAX_PY_FRAMES (checked above); `out` is writable.
        unsafe { (*walk.out).frames[n] = PyFrame { code, lasti, flags } };
        walk.n += 1;
    }
    walk.frame = walk.field(o.frame_back).unwrap_or(0);
    0
}

/// Position and flags of a 3.11+ frame, or None for a shim frame (which
/// marks the frame before it as the first of a C eval call).
fn interpreter_frame(walk: &FrameWalk, code: u64, n: usize) -> Option<(i32, u32)> {
    let o = &walk.offsets;
    let owner = walk.field::<u8>(o.frame_owner).unwrap_or(0);
    if owner == FRAME_OWNED_BY_CSTACK {
        if n > 0 && n <= MAX_PY_FRAMES {
            // SAFETY: n - 1 < MAX_PY_FRAMES; `out` is writable (caller).
            unsafe { (*walk.out).frames[n - 1].flags |= PY_FRAME_ENTRY };
        }
        return None;
    }
    let instr = walk.field::<u64>(o.frame_instr).unwrap_or(0);
    let lasti = instr.wrapping_sub(code + o.code_adaptive as u64) as i32;
    let entry = walk.field::<u8>(o.frame_is_entry).unwrap_or(0) != 0;
    Some((lasti, if entry { PY_FRAME_ENTRY } else { 0 }))
}
