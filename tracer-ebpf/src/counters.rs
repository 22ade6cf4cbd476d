//! Per-CPU counters: plain `+=` because bpfel has no atomic add.

use crate::maps::COUNTERS;

#[inline(always)]
pub fn bump(index: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer comes from the map and is valid for this CPU.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
pub fn add(index: u32, value: u64) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: as in `bump`.
        unsafe { *c += value };
    }
}
