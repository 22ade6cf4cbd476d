//! Turns the kernel's events into a [`Trace`] while the target runs: stacks
//! are unwound, Python frames named and fds described at once (the process
//! may be gone by the end of the trace), then everything is symbolized in one
//! batch at the end.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};

use tracer_common::{PY_STATUS_NONE, PyProcess, Stall, gil::GilState};

use crate::{
    call_log::CallLog,
    collect::{CapturedStack, RawEvent, SampleEvent, SlowSyscallEvent, decode::decode},
    fdinfo,
    gil_waits::GilWaits,
    metrics::events::EventCounters,
    procfs::{fd::FdResolver, maps::read_maps, status},
    pystack::{self, PythonTarget},
    python::{self, CodeReader},
    rotation::counters::KernelCounters,
    stacks::{RawFrame, StackTable},
    symbolize::Symbolizer,
    syscalls,
    trace::{
        BlockingCall, LoopThread, LoopWindow, ProcessInfo, SampleRecord, Stack, StackId,
        StallRecord, SyscallSummary, TargetInfo, TaskInfo, ThreadInfo, Trace,
    },
    unwind::{ModuleFiles, ProcessModules},
    worker_park,
};

/// How many file mappings `pid` has: an interpreter comes in with a file
/// (an executable, libpython), never with anonymous memory, which a JIT's
/// heap and code grow all the time (V8: every few milliseconds under load;
/// each check of node's 100 MB of symbols took 120 ms, and the tracer fell
/// seconds behind on a slow machine).
fn file_mapping_count(pid: u32) -> usize {
    read_maps(pid).map_or(0, |maps| maps.iter().filter(|m| m.is_file()).count())
}

/// Where kernel stacks recorded by id can be read (the probes' stack map).
pub trait KernelStacks {
    /// Return addresses, innermost first.
    fn kernel_stack(&self, id: u32) -> Option<Vec<u64>>;
}

/// What the probes must learn from what the recorder found.
pub enum ProbeUpdate {
    /// Process `pid` runs CPython: its frames can be read.
    Python {
        pid: u32,
        process: PyProcess,
        /// Its GIL, where the version's is known.
        gil: Option<GilState>,
    },
    /// Thread `tid` is a runtime worker that parks on `futex` when idle.
    ParkFutex { tid: u32, futex: u64 },
}

/// x86-64 futex(2).
const SYS_FUTEX: u32 = 202;

/// A process that runs no CPython yet is looked at again when its memory
/// map changed (a started command execs into the interpreter after tracing
/// began), at most this often.
const PYTHON_RECHECK: Duration = Duration::from_millis(20);

pub struct Recorder {
    /// CLOCK_MONOTONIC at the start of the recording (of the period, when
    /// rotating); times are relative to it.
    start_ns: u64,
    threshold_ns: u64,
    offcpu_min_ns: u64,
    files: ModuleFiles,
    modules: HashMap<u32, ProcessModules>,
    /// The processes traced besides the target (children started while
    /// traced, descendants running at attach, other targets), by pid.
    children: BTreeMap<u32, ProcessInfo>,
    pythons: HashMap<u32, PythonTarget>,
    gil_waits: GilWaits,
    /// When processes without CPython were last looked at, and how many
    /// file mappings they had then.
    checked: HashMap<u32, (Instant, usize)>,
    code: CodeReader,
    /// Threads found to park on a futex when idle.
    parked: HashMap<u32, u64>,
    /// Lean mode: the sleep each loop thread went into last, by tid.
    sleeping: HashMap<u32, SlowSyscallEvent>,
    symbolizer: Symbolizer,
    updates: Vec<ProbeUpdate>,
    fds: FdResolver,
    stacks: StackTable,
    calls: CallLog,
    stalls: Vec<StallRecord>,
    samples: Vec<SampleRecord>,
    threads: BTreeMap<u32, ThreadInfo>,
    /// Counts for `--metrics`, from the start (never rotated).
    pub counters: EventCounters,
    /// Records received from the kernel.
    pub events: u64,
    /// Records that could not be decoded (a tracer bug if ever non-zero).
    pub undecodable: u64,
}

/// What the recording needs besides the events, gathered at the end (of
/// the recording, or of a period).
pub struct Ending {
    pub target: TargetInfo,
    pub started_unix_ms: u64,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    pub offcpu_min_ns: u64,
    pub lean: bool,
    pub profile_hz: u64,
    pub ended_by: String,
    /// The kernel's counts over the period.
    pub kernel: KernelCounters,
    /// (on-CPU, run-queue) time of each thread at the period's start: an
    /// exit reports a thread's total since attach.
    pub earlier_thread_times: HashMap<u32, (u64, u64)>,
    pub loop_windows: Vec<LoopWindow>,
    pub kernel_limits: Vec<String>,
    /// With `--cgroup`: the cgroup traced.
    pub cgroup: Option<String>,
}

impl Recorder {
    /// `threshold_ns` and `offcpu_min_ns` as the probes were given them.
    pub fn new(start_ns: u64, threshold_ns: u64, offcpu_min_ns: u64) -> Self {
        Self {
            start_ns,
            threshold_ns,
            offcpu_min_ns,
            files: ModuleFiles::default(),
            modules: HashMap::new(),
            children: BTreeMap::new(),
            pythons: HashMap::new(),
            gil_waits: GilWaits::default(),
            checked: HashMap::new(),
            code: CodeReader::default(),
            parked: HashMap::new(),
            sleeping: HashMap::new(),
            symbolizer: Symbolizer::new(),
            updates: Vec::new(),
            fds: FdResolver::default(),
            stacks: StackTable::default(),
            calls: CallLog::new(threshold_ns, offcpu_min_ns),
            stalls: Vec::new(),
            samples: Vec::new(),
            threads: BTreeMap::new(),
            counters: EventCounters::default(),
            events: 0,
            undecodable: 0,
        }
    }

    /// Reads a process's modules and finds its runtime now, while it surely
    /// lives. What the probes must learn comes out of [`Self::take_updates`].
    pub fn add_process(&mut self, pid: u32) {
        if self.modules.contains_key(&pid) {
            return;
        }
        self.modules
            .insert(pid, ProcessModules::new(pid, &mut self.files));
        self.detect_python(pid);
    }

    fn detect_python(&mut self, pid: u32) {
        self.checked
            .insert(pid, (Instant::now(), file_mapping_count(pid)));
        let process = match python::detect(pid) {
            Ok(Some(process)) => process,
            Ok(None) => return,
            // A process that is gone simply has nothing to read.
            Err(error) if status::proc_path(pid, "").exists() => {
                log::warn!("pid {pid}: no Python frames: {error}");
                return;
            }
            Err(_) => return,
        };
        let Some(modules) = self.modules.get_mut(&pid) else {
            return;
        };
        // The interpreter may have been loaded since the modules were read.
        modules.refresh(&mut self.files);
        log::info!("pid {pid} runs CPython 3.{}", process.minor());
        let gil = process.gil();
        if let Some(gil) = gil {
            self.gil_waits.add_process(pid, gil);
        }
        self.updates.push(ProbeUpdate::Python {
            pid,
            process: process.kernel_info(),
            gil,
        });
        self.pythons
            .insert(pid, PythonTarget::new(process, modules));
    }

    /// What the probes must learn, found since the last call: also what
    /// finds the running asyncio Task of a process that has imported
    /// asyncio since, looked for now rather than at its next event (which
    /// would then name no task: a target started by the tracer blocks
    /// right after its imports).
    pub fn take_updates(&mut self) -> Vec<ProbeUpdate> {
        for (&pid, python) in &mut self.pythons {
            if let Some(process) = python.found_tasks() {
                // The GIL was handed over when the process was found.
                self.updates.push(ProbeUpdate::Python {
                    pid,
                    process,
                    gil: None,
                });
            }
        }
        std::mem::take(&mut self.updates)
    }

    /// Stalls recorded so far (for the progress line).
    pub fn stalls(&self) -> usize {
        self.stalls.len()
    }

    /// Whether process `pid` is known to run CPython.
    pub fn is_python(&self, pid: u32) -> bool {
        self.pythons.contains_key(&pid)
    }

    /// Looks for CPython in `pid` again if its memory map changed: for a
    /// started command, polled until its interpreter is loaded.
    pub fn watch_runtime(&mut self, pid: u32) {
        self.recheck_python(pid, PY_STATUS_NONE);
    }

    /// An event came without Python frames from a process not known to run
    /// CPython: look again, now and then.
    fn recheck_python(&mut self, pid: u32, py_status: u32) {
        if py_status != PY_STATUS_NONE || self.pythons.contains_key(&pid) {
            return;
        }
        let (checked_at, mappings) = match self.checked.get(&pid) {
            Some(&checked) => checked,
            None => return self.detect_python(pid),
        };
        if checked_at.elapsed() < PYTHON_RECHECK {
            return;
        }
        let now = file_mapping_count(pid);
        if now == mappings {
            self.checked.insert(pid, (Instant::now(), now));
        } else {
            self.detect_python(pid);
        }
    }

    /// Handles one ring-buffer record.
    pub fn handle(&mut self, record: &[u8], kernel: &impl KernelStacks) {
        self.events += 1;
        match decode(record) {
            Ok(RawEvent::SlowSyscall(event)) => self.slow_syscall(*event),
            Ok(RawEvent::WaitProbe(event)) => self.wait_probe(&event),
            Ok(RawEvent::TaskExit {
                pid,
                tid,
                comm,
                oncpu_ns,
                runqueue_ns,
            }) => {
                self.threads.insert(
                    tid,
                    ThreadInfo {
                        pid,
                        tid,
                        comm,
                        oncpu_ns: Some(oncpu_ns),
                        runqueue_ns: Some(runqueue_ns),
                    },
                );
            }
            Ok(RawEvent::Stall(stall)) => self.stall(&stall),
            Ok(RawEvent::Sample(sample)) => self.sample(*sample, kernel),
            Ok(RawEvent::ProcessFork { parent, child }) => self.child(parent, child),
            Ok(RawEvent::ProcessJoined { pid }) => {
                log::info!("tracing process {pid}, which started a program in the cgroup");
                self.add_traced(pid, None);
            }
            Ok(RawEvent::SleepBegin(event)) => {
                self.sleeping.insert(event.tid, *event);
            }
            Ok(RawEvent::SleepEnd {
                tid,
                start_ns,
                asleep_ns,
            }) => self.sleep_end(tid, start_ns, asleep_ns),
            Err(error) => {
                self.undecodable += 1;
                log::warn!("undecodable record: {error}");
            }
        }
    }

    fn relative(&self, monotonic_ns: u64) -> u64 {
        monotonic_ns.saturating_sub(self.start_ns)
    }

    fn slow_syscall(&mut self, event: SlowSyscallEvent) {
        self.note_thread(event.pid, event.tid, &event.comm);
        let fd = syscalls::takes_fd(event.nr).then_some(event.arg0 as i32);
        let target = fd.and_then(|fd| fdinfo::describe(&event.fd, event.pid, fd, &mut self.fds));
        let frames = self.user_frames(event.pid, &event.stack);
        if event.nr == SYS_FUTEX && !self.parked.contains_key(&event.tid) {
            self.recognise_park(event.tid, event.arg0, &frames);
        }
        let call = BlockingCall {
            pid: event.pid,
            tid: event.tid,
            nr: event.nr,
            start_ns: self.relative(event.start_ns),
            duration_ns: event.duration_ns,
            ret: event.ret,
            arg0: event.arg0,
            fd,
            target,
            fd_kind: fdinfo::kind(&event.fd),
            blocked_ns: event.blocked_ns,
            uninterruptible: event.uninterruptible,
            stack: self.stacks.intern(frames),
            task: self.task(event.pid, &event.stack),
            gil: self.gil_waits.wait(
                event.pid,
                event.nr,
                event.arg0,
                event.gil_holder,
                self.pythons.get(&event.pid).map(|p| &p.process),
            ),
        };
        self.counters
            .call(&call, self.threshold_ns, self.offcpu_min_ns);
        self.calls.add(call, event.in_iteration);
    }

    /// Lean mode: a sleep that began with a `SleepBegin` was long; it is
    /// reported as a blocking call that lasted as long as it slept.
    fn sleep_end(&mut self, tid: u32, start_ns: u64, asleep_ns: u64) {
        let Some(mut call) = self.sleeping.remove(&tid) else {
            return;
        };
        if call.start_ns == start_ns {
            call.duration_ns = asleep_ns;
            call.blocked_ns = asleep_ns;
            self.slow_syscall(call);
        }
    }

    fn wait_probe(&mut self, event: &SlowSyscallEvent) {
        if !self.parked.contains_key(&event.tid) {
            let frames = self.user_frames(event.pid, &event.stack);
            self.recognise_park(event.tid, event.arg0, &frames);
        }
    }

    /// A futex wait: if it is a runtime worker parking, the kernel is told
    /// that this futex is the thread's idle wait from now on.
    fn recognise_park(&mut self, tid: u32, futex: u64, frames: &[RawFrame]) {
        let names = self.stacks.function_names(frames, &self.symbolizer);
        if worker_park::is_worker_park(names.iter().map(String::as_str)) {
            log::info!("thread {tid} is a runtime worker that parks on futex {futex:#x}");
            self.parked.insert(tid, futex);
            self.updates.push(ProbeUpdate::ParkFutex { tid, futex });
        }
    }

    /// A traced process started another: traced too, from now on.
    fn child(&mut self, parent: u32, child: u32) {
        log::info!("following process {child}, started by {parent}");
        self.add_traced(child, Some(parent));
    }

    /// Whether process `pid` is traced already.
    pub fn knows(&self, pid: u32) -> bool {
        self.modules.contains_key(&pid)
    }

    /// A process traced besides the target: a child the kernel followed, a
    /// descendant already running at attach (`parent` is its parent), or
    /// another process given to trace (no parent). The report lists it
    /// after the target.
    pub fn add_traced(&mut self, pid: u32, parent: Option<u32>) {
        self.children.insert(
            pid,
            ProcessInfo {
                pid,
                parent,
                comm: String::new(),
                cmdline: Vec::new(),
            },
        );
        self.add_process(pid);
    }

    fn stall(&mut self, stall: &Stall) {
        let (pid, tid) = (stall.header.pid, stall.header.tid);
        // A streamed sleep whose end the kernel did not see (its switch
        // back in went unreported): the stall's summary says how long.
        if stall.worst_unseen_ns != 0 {
            self.sleep_end(tid, stall.worst_unseen_ns, stall.worst_ns);
        }
        let longest = (stall.worst_ns > 0).then(|| {
            let nr = stall.worst_nr as u32;
            let fd = syscalls::takes_fd(nr).then_some(stall.worst_arg0 as i32);
            SyscallSummary {
                nr,
                duration_ns: stall.worst_ns,
                fd,
                target: fd.and_then(|fd| self.fds.describe(pid, fd)),
            }
        });
        let nested_loop = longest.as_ref().is_some_and(|l| {
            syscalls::wait_key(l.nr, stall.worst_arg0).is_some_and(|key| key != stall.loop_key)
        });
        let record = StallRecord {
            pid,
            tid,
            start_ns: self.relative(stall.start_ns),
            duration_ns: stall.duration_ns,
            oncpu_ns: stall.oncpu_ns,
            runqueue_ns: stall.runqueue_ns,
            blocked_ns: stall.blocked_ns,
            longest,
            nested_loop,
        };
        self.counters.stall(&record, self.threshold_ns);
        self.stalls.push(record);
    }

    fn sample(&mut self, sample: SampleEvent, kernel: &impl KernelStacks) {
        self.note_thread(sample.pid, sample.tid, &sample.comm);
        let mut frames: Vec<RawFrame> = sample
            .stack
            .kernel_stack_id
            .and_then(|id| kernel.kernel_stack(id))
            .unwrap_or_default()
            .into_iter()
            .map(RawFrame::Kernel)
            .collect();
        frames.extend(self.user_frames(sample.pid, &sample.stack));
        let task = self.task(sample.pid, &sample.stack);
        let record = SampleRecord {
            pid: sample.pid,
            tid: sample.tid,
            time_ns: self.relative(sample.time_ns),
            for_stall: sample.for_stall,
            stack: self.stacks.intern(frames),
            task,
        };
        self.counters.sample(&record);
        self.samples.push(record);
    }

    fn note_thread(&mut self, pid: u32, tid: u32, comm: &str) {
        self.threads.entry(tid).or_insert_with(|| ThreadInfo {
            pid,
            tid,
            comm: comm.to_string(),
            oncpu_ns: None,
            runqueue_ns: None,
        });
    }

    /// The user part of a captured stack: native frames unwound, with the
    /// Python frames merged in where the interpreter runs them.
    fn user_frames(&mut self, pid: u32, captured: &CapturedStack) -> Vec<RawFrame> {
        self.add_process(pid);
        self.recheck_python(pid, captured.py_status);
        let Some(process) = self.modules.get_mut(&pid) else {
            return Vec::new();
        };
        let python = self.pythons.get(&pid);
        let mut native = Vec::new();
        if !captured.user.is_empty() {
            let unwound = process.unwind(&captured.regs, &captured.user, &mut self.files);
            for addr in unwound.frames {
                let is_eval = python.is_some_and(|p| p.is_eval(&addr));
                native.push((self.stacks.native(addr), is_eval));
            }
            if unwound.truncated {
                native.push((RawFrame::Truncated, false));
            }
        }
        match python {
            Some(python) if !captured.py_frames.is_empty() => {
                let frames = python.frames(&mut self.code, &captured.py_frames);
                pystack::merge(native, frames)
            }
            _ => native.into_iter().map(|(frame, _)| frame).collect(),
        }
    }

    /// The asyncio Task the kernel found running at a captured stack.
    fn task(&mut self, pid: u32, captured: &CapturedStack) -> Option<TaskInfo> {
        let python = self.pythons.get_mut(&pid)?;
        python.task(&mut self.code, &captured.py_task)
    }

    /// What `trace` lacks of the time since `since_ns` (relative to the
    /// recording's start), for `tracer top`: the stalls, blocking calls and
    /// samples of that window and the threads met, the stacks they name
    /// symbolized now. `named` keeps the stacks named on earlier calls.
    pub fn recent(
        &self,
        since_ns: u64,
        mut trace: Trace,
        named: &mut HashMap<StackId, Stack>,
    ) -> Trace {
        trace.threshold_ns = self.threshold_ns;
        trace.offcpu_min_ns = self.offcpu_min_ns;
        let known: HashSet<u32> = trace.threads.iter().map(|t| t.tid).collect();
        let met = self.threads.values().filter(|t| !known.contains(&t.tid));
        trace.threads.extend(met.cloned());
        trace.stalls = self
            .stalls
            .iter()
            .filter(|s| s.start_ns + s.duration_ns >= since_ns)
            .cloned()
            .collect();
        trace.blocking = self
            .calls
            .kept()
            .iter()
            .filter(|c| c.start_ns + c.duration_ns >= since_ns)
            .cloned()
            .collect();
        trace.samples = self
            .samples
            .iter()
            .filter(|s| s.time_ns >= since_ns)
            .cloned()
            .collect();
        let mut ids: Vec<StackId> = trace.blocking.iter().map(|c| c.stack).collect();
        ids.extend(trace.samples.iter().map(|s| s.stack));
        ids.sort_unstable();
        ids.dedup();
        let unnamed: Vec<StackId> = ids
            .iter()
            .filter(|id| !named.contains_key(id))
            .copied()
            .collect();
        let stacks = self.stacks.symbolize_some(&unnamed, &self.symbolizer);
        named.extend(unnamed.into_iter().zip(stacks));
        // The window's stacks, numbered anew from 0.
        let index: HashMap<StackId, StackId> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as StackId))
            .collect();
        trace.stacks = ids
            .iter()
            .map(|id| named.get(id).cloned().unwrap_or_default())
            .collect();
        for call in &mut trace.blocking {
            call.stack = index[&call.stack];
        }
        for sample in &mut trace.samples {
            sample.stack = index[&sample.stack];
        }
        trace
    }

    /// The target, then its children, each named as it ended up (after an
    /// exec): from /proc if it lives, else from its exit.
    fn process_list(
        &self,
        target: &TargetInfo,
        threads: &BTreeMap<u32, ThreadInfo>,
    ) -> Vec<ProcessInfo> {
        let root = ProcessInfo {
            pid: target.pid,
            parent: None,
            comm: target.comm.clone(),
            cmdline: target.cmdline.clone(),
        };
        let children = self.children.values().map(|child| {
            let cmdline = status::read_cmdline(child.pid).unwrap_or_default();
            let comm = status::read_stat(&status::proc_path(child.pid, "stat"))
                .map(|stat| stat.comm)
                .ok()
                .or_else(|| threads.get(&child.pid).map(|t| t.comm.clone()))
                .unwrap_or_default();
            ProcessInfo {
                comm,
                cmdline,
                ..child.clone()
            }
        });
        std::iter::once(root).chain(children).collect()
    }

    /// Adds the threads still alive, symbolizes, and assembles the trace.
    pub fn finish(mut self, ending: Ending) -> Trace {
        self.take_period(ending, 0)
    }

    /// The trace of the period that `ending` ends; what it held is let go
    /// of, and the next period's times count from `next_start_ns`
    /// (CLOCK_MONOTONIC). What outlives a period: the processes and their
    /// modules, the threads alive, the caches, the metrics' counters.
    pub fn take_period(&mut self, ending: Ending, next_start_ns: u64) -> Trace {
        let pids: Vec<u32> = self.modules.keys().copied().collect();
        let mut alive = HashSet::new();
        for pid in pids {
            for tid in status::list_threads(pid).unwrap_or_default() {
                let comm = status::read_thread_comm(pid, tid);
                self.note_thread(pid, tid, &comm);
                alive.insert(tid);
            }
        }
        let mut threads = std::mem::take(&mut self.threads);
        for (tid, thread) in threads.iter_mut() {
            match ending.kernel.thread_times.get(tid) {
                Some(&(oncpu, runqueue)) => {
                    thread.oncpu_ns = Some(oncpu);
                    thread.runqueue_ns = Some(runqueue);
                }
                // Exited: its totals since attach, less the earlier periods.
                None => {
                    let (was_oncpu, was_runqueue) = ending
                        .earlier_thread_times
                        .get(tid)
                        .copied()
                        .unwrap_or_default();
                    thread.oncpu_ns = thread.oncpu_ns.map(|t| t.saturating_sub(was_oncpu));
                    thread.runqueue_ns = thread.runqueue_ns.map(|t| t.saturating_sub(was_runqueue));
                }
            }
        }
        self.threads = threads
            .iter()
            .filter(|(tid, _)| alive.contains(*tid))
            .map(|(tid, thread)| {
                let fresh = ThreadInfo {
                    oncpu_ns: None,
                    runqueue_ns: None,
                    ..thread.clone()
                };
                (*tid, fresh)
            })
            .collect();
        let target_pid = ending.target.pid;
        // The period's threads, the exited ones too: an exited child's name
        // is that of its exit.
        let processes = self.process_list(&ending.target, &threads);
        let calls = std::mem::replace(
            &mut self.calls,
            CallLog::new(self.threshold_ns, self.offcpu_min_ns),
        );
        let (blocking, call_groups) = calls.finish();
        let loops = ending
            .kernel
            .loops
            .iter()
            .map(|(tid, stats)| LoopThread {
                pid: threads.get(tid).map_or(target_pid, |t| t.pid),
                tid: *tid,
                iterations: stats.iterations,
                busy_ns: stats.busy_ns,
                idle_ns: stats.idle_ns,
                max_busy_ns: stats.max_busy_ns,
                hist: stats.hist.to_vec(),
            })
            .collect();
        self.start_ns = next_start_ns;
        let kernel = ending.kernel;
        Trace {
            target: ending.target,
            started_unix_ms: ending.started_unix_ms,
            duration_ns: ending.duration_ns,
            threshold_ns: ending.threshold_ns,
            offcpu_min_ns: ending.offcpu_min_ns,
            lean: ending.lean,
            ended_by: ending.ended_by,
            processes,
            threads: threads.into_values().collect(),
            syscalls: kernel.syscalls,
            blocking,
            call_groups,
            loops,
            loop_windows: ending.loop_windows,
            stalls: std::mem::take(&mut self.stalls),
            samples: std::mem::take(&mut self.samples),
            profile_hz: ending.profile_hz,
            offcpu_short: kernel.offcpu_short,
            runqueue: kernel.runqueue,
            stacks: std::mem::take(&mut self.stacks).symbolize(&self.symbolizer),
            drops: kernel.drops,
            kernel_limits: ending.kernel_limits,
            cgroup: ending.cgroup,
        }
    }
}
