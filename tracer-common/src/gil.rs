//! Where a CPython process keeps its GIL (`struct _gil_runtime_state`), so
//! that a futex wait on it can be told from other lock waits, and its
//! holder read as the wait begins.

/// `GIL_STATES` value, by process: the GIL's bytes (its mutex and
/// condition variables are futex words inside them) and where in them the
/// last holder's `PyThreadState *` is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GilState {
    pub start: u64,
    pub len: u64,
    /// Offset of `last_holder` from `start`.
    pub holder_offset: u64,
}

impl GilState {
    /// Whether a futex at `address` is one of the GIL's.
    pub fn contains(&self, address: u64) -> bool {
        address >= self.start && address - self.start < self.len
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)] struct of integers without padding.
    unsafe impl aya::Pod for super::GilState {}
}

#[cfg(test)]
mod tests {
    use super::GilState;

    #[test]
    fn the_range_is_half_open() {
        let gil = GilState {
            start: 1000,
            len: 208,
            holder_offset: 8,
        };
        assert!(gil.contains(1000) && gil.contains(1207));
        assert!(!gil.contains(999) && !gil.contains(1208));
    }
}
