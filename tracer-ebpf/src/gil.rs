//! A futex wait on a CPython GIL: who held the GIL as the wait began.
//! Userspace finds each Python process's GIL; here, one lookup per futex
//! wait of a traced thread, and one user read for a GIL wait.

use aya_ebpf::{helpers::bpf_probe_read_user, macros::map, maps::HashMap};
use tracer_common::{MAX_PROCESSES, gil::GilState};

/// Where each Python process's GIL is, by tgid.
#[map]
static GIL_STATES: HashMap<u32, GilState> = HashMap::with_max_entries(MAX_PROCESSES, 0);

/// The `PyThreadState *` that holds (last held) the GIL of process `tgid`,
/// if `futex` is one of its GIL's futex words; 0 otherwise.
#[inline(always)]
pub fn holder(tgid: u32, futex: u64) -> u64 {
    // SAFETY: map values are read-only here.
    let Some(gil) = (unsafe { GIL_STATES.get(tgid) }) else {
        return 0;
    };
    if !gil.contains(futex) {
        return 0;
    }
    let field = gil.start + gil.holder_offset;
    // SAFETY: bpf_probe_read_user checks the address.
    unsafe { bpf_probe_read_user(field as *const u64) }.unwrap_or(0)
}
