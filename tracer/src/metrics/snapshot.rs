//! What a scrape shows: the latest reading of everything exported, made by
//! the recording loop and read by the server.

use tracer_common::LoopStats;

use crate::trace::Drops;

use super::{buckets::Classic, events::EventSums};

/// A thread that ran an event loop.
#[derive(Debug, Clone)]
pub struct LoopThreadMetrics {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    /// Busy time of each iteration (poll return to the next poll).
    pub iterations: Classic,
    /// Time idle in the loop's own wait.
    pub idle_ns: u64,
    /// On-CPU time while traced (None: the kernel has no count yet).
    pub cpu_ns: Option<u64>,
    /// The kernel's statistics as read (`tracer top` takes differences).
    pub stats: LoopStats,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub loops: Vec<LoopThreadMetrics>,
    pub events: EventSums,
    /// (pid, comm) of every thread the event counters name, by tid.
    pub threads: std::collections::BTreeMap<u32, (u32, String)>,
    pub runqueue: Classic,
    pub drops: Drops,
    /// Records received from the kernel.
    pub tracer_events: u64,
    /// The tracer's resident memory.
    pub tracer_rss_bytes: u64,
}
