//! Which tasks are traced. Every program asks this first, on every syscall
//! and context switch of every process on the machine, so it must be cheap.

use aya_ebpf::{Global, helpers::bpf_get_current_pid_tgid};

use crate::maps::TRACED;

/// The process tracing began with (set at load).
#[unsafe(no_mangle)]
static TARGET_TGID: Global<u32> = Global::new(0);

/// Child processes of traced processes are traced too (set at load).
#[unsafe(no_mangle)]
static FOLLOW_CHILDREN: Global<u32> = Global::new(0);

#[inline(always)]
pub fn follow_children() -> bool {
    FOLLOW_CHILDREN.load() != 0
}

/// Whether process `tgid` is traced. Without children to follow the target
/// is the only one: a compare with a constant instead of a hash lookup
/// (about 45 ns here, twice per syscall).
#[inline(always)]
pub fn is_traced(tgid: u32) -> bool {
    if !follow_children() {
        return tgid == TARGET_TGID.load();
    }
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
