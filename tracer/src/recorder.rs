//! Turns the kernel's events into a [`Trace`] while the target runs: stacks
//! are unwound and fds described at once (the process may be gone by the end
//! of the trace), then everything is symbolized in one batch at the end.

use std::collections::{BTreeMap, HashMap};

use crate::{
    collect::{CapturedStack, RawEvent, SlowSyscallEvent, decode::decode},
    procfs::{fd::FdResolver, status},
    stacks::{RawFrame, StackTable},
    symbolize::Symbolizer,
    syscalls,
    trace::{BlockingCall, Drops, StackId, SyscallTotals, TargetInfo, ThreadInfo, Trace},
    unwind::{ModuleFiles, ProcessModules},
};

pub struct Recorder {
    /// CLOCK_MONOTONIC at the start of the recording; times are relative to it.
    start_ns: u64,
    files: ModuleFiles,
    processes: HashMap<u32, ProcessModules>,
    fds: FdResolver,
    stacks: StackTable,
    blocking: Vec<BlockingCall>,
    threads: BTreeMap<u32, ThreadInfo>,
    /// Records received from the kernel.
    pub events: u64,
    /// Records that could not be decoded (a tracer bug if ever non-zero).
    pub undecodable: u64,
}

/// What the recording needs besides the events, gathered at the end.
pub struct Ending {
    pub target: TargetInfo,
    pub started_unix_ms: u64,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    pub ended_by: String,
    pub syscalls: Vec<SyscallTotals>,
    pub drops: Drops,
}

impl Recorder {
    pub fn new(start_ns: u64) -> Self {
        Self {
            start_ns,
            files: ModuleFiles::default(),
            processes: HashMap::new(),
            fds: FdResolver::default(),
            stacks: StackTable::default(),
            blocking: Vec::new(),
            threads: BTreeMap::new(),
            events: 0,
            undecodable: 0,
        }
    }

    /// Reads a process's modules now, while it surely lives.
    pub fn add_process(&mut self, pid: u32) {
        self.processes
            .entry(pid)
            .or_insert_with(|| ProcessModules::new(pid, &mut self.files));
    }

    /// Handles one ring-buffer record.
    pub fn handle(&mut self, record: &[u8]) {
        self.events += 1;
        match decode(record) {
            Ok(RawEvent::SlowSyscall(event)) => self.slow_syscall(*event),
            Ok(RawEvent::TaskExit { pid, tid, comm }) => {
                self.threads.insert(tid, ThreadInfo { pid, tid, comm });
            }
            Err(error) => {
                self.undecodable += 1;
                log::warn!("undecodable record: {error}");
            }
        }
    }

    fn slow_syscall(&mut self, event: SlowSyscallEvent) {
        self.note_thread(event.pid, event.tid, &event.comm);
        let fd = syscalls::takes_fd(event.nr).then_some(event.arg0 as i32);
        let target = fd.and_then(|fd| self.fds.describe(event.pid, fd));
        let stack = self.user_stack(event.pid, &event.stack);
        self.blocking.push(BlockingCall {
            pid: event.pid,
            tid: event.tid,
            nr: event.nr,
            start_ns: event.start_ns.saturating_sub(self.start_ns),
            duration_ns: event.duration_ns,
            ret: event.ret,
            fd,
            target,
            stack,
        });
    }

    fn note_thread(&mut self, pid: u32, tid: u32, comm: &str) {
        self.threads.entry(tid).or_insert_with(|| ThreadInfo {
            pid,
            tid,
            comm: comm.to_string(),
        });
    }

    fn user_stack(&mut self, pid: u32, captured: &CapturedStack) -> StackId {
        self.add_process(pid);
        let Some(process) = self.processes.get_mut(&pid) else {
            return self.stacks.intern(Vec::new());
        };
        let unwound = process.unwind(&captured.regs, &captured.user, &mut self.files);
        let mut frames: Vec<RawFrame> = unwound
            .frames
            .into_iter()
            .map(|addr| self.stacks.native(addr))
            .collect();
        if unwound.truncated {
            frames.push(RawFrame::Truncated);
        }
        self.stacks.intern(frames)
    }

    /// Adds the threads still alive, symbolizes, and assembles the trace.
    pub fn finish(mut self, ending: Ending, symbolizer: &Symbolizer) -> Trace {
        let pids: Vec<u32> = self.processes.keys().copied().collect();
        for pid in pids {
            for tid in status::list_threads(pid).unwrap_or_default() {
                let comm = status::read_thread_comm(pid, tid);
                self.note_thread(pid, tid, &comm);
            }
        }
        Trace {
            target: ending.target,
            started_unix_ms: ending.started_unix_ms,
            duration_ns: ending.duration_ns,
            threshold_ns: ending.threshold_ns,
            ended_by: ending.ended_by,
            threads: self.threads.into_values().collect(),
            syscalls: ending.syscalls,
            blocking: self.blocking,
            stacks: self.stacks.symbolize(symbolizer),
            drops: ending.drops,
        }
    }
}
