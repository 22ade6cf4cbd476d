//! Which tasks are traced. Every program asks this first.

use aya_ebpf::helpers::bpf_get_current_pid_tgid;

use crate::maps::TRACED;

/// The current task's (tgid, tid) if its process is traced.
#[inline(always)]
pub fn current_traced() -> Option<(u32, u32)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: the value is only tested for presence.
    unsafe { TRACED.get(tgid) }?;
    Some((tgid, pid_tgid as u32))
}
