//! `--metrics ADDR`: a Prometheus endpoint served while tracing. The
//! recording loop reads the kernel's statistics and the recorder's event
//! counters once a second into a [`snapshot::Snapshot`]; each scrape encodes
//! the latest one (documented in docs/metrics.md). `tracer top` shows the
//! same reading (`crate::live`).

pub mod buckets;
pub mod events;
pub mod exposition;
mod recent;
pub mod server;
pub mod snapshot;
mod tasks;

use std::collections::BTreeMap;

use crate::{
    probes::{ProbeError, Probes},
    procfs::status,
    recorder::Recorder,
};

use self::{
    buckets::classic,
    snapshot::{LoopThreadMetrics, Snapshot},
};

/// Takes the readings: the names of the threads met so far are kept, as
/// the thread may be gone by the next reading.
#[derive(Default)]
pub struct Reader {
    threads: BTreeMap<u32, (u32, String)>,
}

impl Reader {
    /// Takes a reading now; `now_ns` is CLOCK_MONOTONIC.
    pub fn read(
        &mut self,
        probes: &Probes,
        recorder: &Recorder,
        now_ns: u64,
    ) -> Result<Snapshot, ProbeError> {
        let events = recorder.counters.sums.clone();
        let times = probes.thread_times(now_ns)?;
        let stats = probes.loop_stats()?;
        let tids = stats
            .iter()
            .map(|(tid, _)| *tid)
            .chain(events.pids.keys().copied());
        for tid in tids {
            let known = events.pids.get(&tid).copied();
            self.threads
                .entry(tid)
                .or_insert_with(|| thread(tid, known));
        }
        let loops = stats
            .iter()
            .map(|(tid, stat)| {
                let (pid, comm) = self.threads.get(tid).cloned().unwrap_or_default();
                LoopThreadMetrics {
                    pid,
                    tid: *tid,
                    comm,
                    iterations: classic(&stat.hist, stat.busy_ns),
                    idle_ns: stat.idle_ns,
                    cpu_ns: times.get(tid).map(|(oncpu, _)| *oncpu),
                    stats: *stat,
                }
            })
            .collect();
        let runqueue = probes.runqueue()?;
        Ok(Snapshot {
            loops,
            events,
            threads: self.threads.clone(),
            runqueue: classic(&runqueue.hist, runqueue.total_ns),
            drops: probes.drops()?,
            tracer_events: recorder.events,
            tracer_rss_bytes: own_rss_bytes(),
        })
    }
}

/// A thread's process and name, from /proc (a thread's id opens its
/// process's directory too).
fn thread(tid: u32, pid: Option<u32>) -> (u32, String) {
    let pid = pid.or_else(|| status::read_tgid(tid).ok()).unwrap_or(tid);
    (pid, status::read_thread_comm(pid, tid))
}

/// The resident memory of this process, from /proc/self/statm.
pub fn own_rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf reads a constant of the system and touches no memory.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}
