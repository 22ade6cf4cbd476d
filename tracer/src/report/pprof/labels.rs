//! The labels samples carry: `thread` (comm/tid) and `loop` (yes when the
//! thread ran an event loop), so that a profile can be cut by thread or to
//! the event loops alone (`-tagfocus=loop=yes`, a label selector in
//! Pyroscope or Parca).

use std::collections::HashMap;

use crate::trace::Trace;

pub struct Threads<'a> {
    trace: &'a Trace,
    comms: HashMap<u32, &'a str>,
}

impl<'a> Threads<'a> {
    pub fn new(trace: &'a Trace) -> Self {
        let comms = trace
            .threads
            .iter()
            .map(|t| (t.tid, t.comm.as_str()))
            .collect();
        Self { trace, comms }
    }

    /// `comm/tid`, e.g. `python3/4242`; `?/tid` for a thread never named.
    pub fn label(&self, tid: u32) -> String {
        let comm = self.comms.get(&tid).copied().unwrap_or("?");
        format!("{comm}/{tid}")
    }

    pub fn loop_label(&self, tid: u32) -> &'static str {
        if self.trace.is_loop_thread(tid) {
            "yes"
        } else {
            "no"
        }
    }
}
