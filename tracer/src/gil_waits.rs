//! Futex waits on a CPython GIL, told apart from other lock waits as they
//! arrive, and their holders named.

use std::collections::HashMap;

use tracer_common::gil::GilState;

use crate::{python::PythonProcess, trace::GilWait};

const SYS_FUTEX: u32 = 202;

#[derive(Default)]
pub struct GilWaits {
    /// Each Python process's GIL, where its version's is known.
    gils: HashMap<u32, GilState>,
    /// (pid, `PyThreadState *`) → its thread, read once.
    holders: HashMap<(u32, u64), Option<u32>>,
}

impl GilWaits {
    pub fn add_process(&mut self, pid: u32, gil: GilState) {
        self.gils.insert(pid, gil);
    }

    /// Whether a `futex` wait on `address` in process `pid` waits for the GIL.
    pub fn is_gil(&self, pid: u32, nr: u32, address: u64) -> bool {
        nr == SYS_FUTEX && self.gils.get(&pid).is_some_and(|gil| gil.contains(address))
    }

    /// The GIL wait a streamed call of process `pid` is, if it is one;
    /// `holder` is the thread state the kernel read as it began (0: none).
    pub fn wait(
        &mut self,
        pid: u32,
        nr: u32,
        address: u64,
        holder: u64,
        python: Option<&PythonProcess>,
    ) -> Option<GilWait> {
        if !self.is_gil(pid, nr, address) {
            return None;
        }
        let holder_tid = match (holder, python) {
            (0, _) | (_, None) => None,
            (tstate, Some(python)) => *self
                .holders
                .entry((pid, tstate))
                .or_insert_with(|| python.thread_of(tstate)),
        };
        Some(GilWait { holder_tid })
    }
}
