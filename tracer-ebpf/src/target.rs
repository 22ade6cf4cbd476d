//! Which tasks are traced. Every program asks this first, on every syscall
//! and context switch of every process on the machine, so it must be cheap.

use aya_ebpf::{
    Global,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid},
    macros::map,
    maps::{Array, HashMap},
};
use tracer_common::MAX_CGROUPS;

use crate::maps::TRACED;

/// The process tracing began with (set at load).
#[unsafe(no_mangle)]
static TARGET_TGID: Global<u32> = Global::new(0);

/// Child processes of traced processes are traced too (set at load).
#[unsafe(no_mangle)]
static FOLLOW_CHILDREN: Global<u32> = Global::new(0);

/// The traced processes are those of the `TRACED` map, not the target
/// alone: when children are followed, or several pids were given (set at
/// load).
#[unsafe(no_mangle)]
static TRACE_BY_MAP: Global<u32> = Global::new(0);

/// With `--cgroup`: a process that starts a program inside one of the
/// `CGROUPS` joins the trace (set at load).
#[unsafe(no_mangle)]
static TRACE_CGROUPS: Global<u32> = Global::new(0);

/// The ids of the traced cgroup and of its descendants, kept current by
/// userspace. Value: unused.
#[map]
static CGROUPS: HashMap<u64, u8> = HashMap::with_max_entries(MAX_CGROUPS, 0);

/// Slot 0 is set by userspace when tracing ends: from then on nothing is
/// traced, and the programs can stay attached until the tracer has exited
/// (detaching the `syscalls:` tracepoints takes ~40 ms each).
#[map]
static STOPPED: Array<u32> = Array::with_max_entries(1, 0);

#[inline(always)]
pub fn follow_children() -> bool {
    FOLLOW_CHILDREN.load() != 0
}

#[inline(always)]
pub fn trace_cgroups() -> bool {
    TRACE_CGROUPS.load() != 0
}

/// Whether the current task runs in one of the traced cgroups.
#[inline(always)]
pub fn in_traced_cgroup() -> bool {
    // SAFETY: the value is only tested for presence.
    unsafe { CGROUPS.get(bpf_get_current_cgroup_id()) }.is_some()
}

/// Whether process `tgid` is traced. With one process and no children to
/// follow, the target is the only one: a compare with a constant instead of
/// a hash lookup (about 45 ns here, twice per syscall). The stop flag is
/// read only then.
#[inline(always)]
pub fn is_traced(tgid: u32) -> bool {
    let traced = if TRACE_BY_MAP.load() != 0 {
        in_traced_map(tgid)
    } else {
        tgid == TARGET_TGID.load()
    };
    traced && !stopped()
}

/// Whether tracing has ended.
#[inline(always)]
pub fn stopped() -> bool {
    STOPPED.get(0).is_some_and(|stopped| *stopped != 0)
}

/// Whether the table of traced processes has `tgid`, stopped or not.
#[inline(always)]
pub fn in_traced_map(tgid: u32) -> bool {
    // SAFETY: the value is only tested for presence.
    unsafe { TRACED.get(tgid) }.is_some()
}

/// The current task's (tgid, tid) if its process is traced.
#[inline(always)]
pub fn current_traced() -> Option<(u32, u32)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    is_traced(tgid).then_some((tgid, pid_tgid as u32))
}
