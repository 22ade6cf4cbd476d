//! With `--cgroup`: keeps the trace in step with the cgroup while it
//! records. The kernel adds a process that starts a program in a cgroup it
//! knows; this adds the cgroups made since (a new container of a pod) and
//! the processes that entered without starting a program.

use std::collections::HashSet;

use crate::{probes::Probes, recorder::Recorder, target::cgroup::Cgroup};

pub struct CgroupWatch {
    pub cgroup: Cgroup,
    /// Cgroup ids the kernel knows.
    known_ids: HashSet<u64>,
}

impl CgroupWatch {
    pub fn new(cgroup: Cgroup) -> Self {
        Self {
            cgroup,
            known_ids: HashSet::new(),
        }
    }

    /// Gives the kernel the ids of cgroups it does not know yet, then
    /// traces the processes inside that are not traced yet. The processes
    /// are read after the ids are in the kernel: one that starts a program
    /// in between is the kernel's to add, one that started before is read.
    pub fn refresh(&mut self, probes: &mut Probes, recorder: &mut Recorder) -> anyhow::Result<()> {
        let mut members = self.cgroup.scan()?;
        let mut new_ids = false;
        for &id in &members.ids {
            if self.known_ids.insert(id) {
                probes.trace_cgroup(id)?;
                new_ids = true;
            }
        }
        if new_ids {
            members = self.cgroup.scan()?;
        }
        let tracer = std::process::id();
        for pid in members.pids {
            if pid == tracer || recorder.knows(pid) {
                continue;
            }
            match probes.trace_process(pid) {
                Ok(()) => {
                    log::info!(
                        "tracing process {pid}, found in cgroup {}",
                        self.cgroup.name
                    );
                    recorder.add_traced(pid, None);
                }
                // The table of traced processes is full: the others are
                // traced still.
                Err(error) => log::warn!("cannot trace process {pid}: {error}"),
            }
        }
        Ok(())
    }
}
