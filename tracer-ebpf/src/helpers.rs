//! Safe wrappers for BPF helpers that cannot fail.

use aya_ebpf::helpers::generated::{bpf_get_smp_processor_id, bpf_ktime_get_ns};

/// CLOCK_MONOTONIC in nanoseconds.
#[inline(always)]
pub fn now_ns() -> u64 {
    // SAFETY: no arguments, no memory access.
    unsafe { bpf_ktime_get_ns() }
}

/// The CPU this program runs on.
#[inline(always)]
pub fn cpu_id() -> u32 {
    // SAFETY: no arguments, no memory access.
    unsafe { bpf_get_smp_processor_id() }
}
