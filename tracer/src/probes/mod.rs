//! Loading and attaching the kernel programs, and reading their maps.

pub mod btf;
mod kernel;
mod kernel_offsets;
mod release;
#[cfg(test)]
mod stack_budget;

pub use kernel::support as kernel_support;

use aya::{
    Ebpf, EbpfLoader,
    maps::{
        Array, HashMap as BpfHashMap, Map, MapData, MapError, PerCpuArray, ProgramArray, RingBuf,
        StackTraceMap,
    },
    programs::{
        PerfEvent, Program, RawTracePoint, TracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
        trace_point::TracePointLinkId,
    },
    util::online_cpus,
};
use std::collections::HashMap;

use tracer_common::{
    LatencyHist, LoopStats, MAX_THREADS, OffCpuTotals, PAGE_FAULT_NR, PyProcess, SyscallStats,
    ThreadState, counter, gil::GilState, globals, hist::HIST_BUCKETS, maps,
};

use crate::{
    recorder::KernelStacks,
    trace::{Drops, RunqueueLatency, ShortOffCpu, SyscallTotals},
};

/// The kernel object, built by build.rs, for kernels with `bpf_loop`
/// (5.17+), and the one for older kernels.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/probes"));
static OBJECT_BOUNDED: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/probes-bounded"));

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "loading the eBPF programs failed: {0} (tracer needs Linux 5.8 or newer with BTF, and is \
         tested on {tested}; run as root)",
        tested = kernel::TESTED
    )]
    Load(#[source] aya::EbpfError),
    #[error("attaching {what} failed: {source}")]
    Attach {
        what: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("eBPF map {0} is missing from the object (a build problem)")]
    MissingMap(&'static str),
    #[error("eBPF program {0} is missing from the object (a build problem)")]
    MissingProgram(&'static str),
    #[error("{0}")]
    Kernel(#[from] kernel::KernelError),
    #[error("cannot list the online CPUs: {0}")]
    Cpus(#[source] std::io::Error),
}

#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    pub threshold_ns: u64,
    /// Syscalls that sleep at least this long are streamed for the off-CPU
    /// profile.
    pub offcpu_min_ns: u64,
    /// CPU profile sampling frequency; 0 disables it.
    pub profile_hz: u64,
    /// Trace the child processes of traced processes too.
    pub follow_children: bool,
    /// Several processes are traced from the start (`-p A,B`), children
    /// followed or not.
    pub several_processes: bool,
    /// `--cgroup`: processes that start a program in the cgroups given with
    /// [`Probes::trace_cgroup`] are traced too.
    pub cgroups: bool,
    /// Lean mode (the default): only the poll-family and futex syscalls are
    /// traced.
    pub lean: bool,
}

/// What an event loop idles or parks in: the only syscalls lean mode traces.
const WAIT_SYSCALLS: [&str; 9] = [
    "poll",
    "select",
    "epoll_wait",
    "pselect6",
    "ppoll",
    "epoll_pwait",
    "io_uring_enter",
    "epoll_pwait2",
    "futex",
];

/// Raw tracepoints of the scheduler and of process lifecycle, attached in
/// both modes; each program has the tracepoint's name.
const SCHEDULER_PROGRAMS: [&str; 4] = [
    "sched_switch",
    "sched_wakeup",
    "sched_process_exit",
    "sched_process_fork",
];

pub struct Probes {
    ebpf: Ebpf,
    /// Lean mode's links to the `syscalls:` tracepoints, by program.
    wait_links: Vec<(&'static str, TracePointLinkId)>,
    /// What this kernel cannot do, one line each.
    kernel_limits: Vec<String>,
}

impl Probes {
    /// Loads and attaches everything, for tracing `target_pid` (and, when
    /// following children, the processes added with
    /// [`Probes::trace_process`]).
    pub fn load(settings: &ProbeSettings, target_pid: u32) -> Result<Self, ProbeError> {
        // aya's loader parses the kernel BTF as it is made, and our offsets
        // need a parse of their own: side by side, ~15 ms each.
        let (kernel, mut loader) = std::thread::scope(|scope| {
            let kernel = scope.spawn(kernel::RunningKernel::inspect);
            let loader = EbpfLoader::new();
            (kernel.join(), loader)
        });
        let kernel = kernel.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let object = if kernel.bpf_loop {
            OBJECT
        } else {
            OBJECT_BOUNDED
        };
        let stall_sample_after = settings.threshold_ns / 2;
        let mut ebpf = loader
            .override_global(globals::THRESHOLD_NS, &settings.threshold_ns, true)
            .override_global(globals::STALL_SAMPLE_AFTER_NS, &stall_sample_after, true)
            .override_global(globals::OFFCPU_MIN_NS, &settings.offcpu_min_ns, true)
            .override_global(
                globals::FOLLOW_CHILDREN,
                &u32::from(settings.follow_children),
                true,
            )
            .override_global(
                globals::TRACE_BY_MAP,
                &u32::from(
                    settings.follow_children || settings.several_processes || settings.cgroups,
                ),
                true,
            )
            .override_global(globals::TRACE_CGROUPS, &u32::from(settings.cgroups), true)
            .override_global(globals::TARGET_TGID, &target_pid, true)
            .override_global(globals::KERNEL, &kernel.offsets, true)
            .override_global(
                globals::SWITCH_STATE_ARG,
                &u32::from(kernel.switch_state_arg),
                true,
            )
            .load(object)
            .map_err(ProbeError::Load)?;
        load_programs(&mut ebpf, &programs_for(settings))?;
        let mut wait_links = Vec::new();
        if settings.lean {
            for (name, prefix) in [
                ("wait_syscall_enter", "sys_enter_"),
                ("wait_syscall_exit", "sys_exit_"),
            ] {
                let links = attach_syscall_tracepoints(&mut ebpf, name, prefix)?;
                wait_links.extend(links.into_iter().map(|link| (name, link)));
            }
        } else {
            attach_raw_tracepoint(&mut ebpf, "sys_enter", "sys_enter")?;
            attach_raw_tracepoint(&mut ebpf, "sys_exit", "sys_exit")?;
        }
        install_sleep_capture(&mut ebpf)?;
        for name in SCHEDULER_PROGRAMS {
            attach_raw_tracepoint(&mut ebpf, name, name)?;
        }
        attach_raw_tracepoint(&mut ebpf, "stall_sample", "hrtimer_expire_entry")?;
        if settings.cgroups {
            attach_raw_tracepoint(&mut ebpf, "sched_process_exec", "sched_process_exec")?;
        }
        // A fixed period, not a frequency the kernel adjusts: each sample
        // then stands for exactly 1/hz of CPU time. Rate 0: no profile.
        if let Some(period_ns) = profile_period_ns(settings) {
            attach_sampler(&mut ebpf, "profile_sample", SamplePolicy::Period(period_ns))?;
        }
        Ok(Self {
            ebpf,
            wait_links,
            kernel_limits: kernel.limits(),
        })
    }

    /// What tracing on this kernel cannot do, one line each.
    pub fn kernel_limits(&self) -> &[String] {
        &self.kernel_limits
    }

    /// Starts tracing every thread of process `pid`.
    pub fn trace_process(&mut self, pid: u32) -> Result<(), ProbeError> {
        let map_error = map_error(maps::TRACED);
        let map = self.map_mut(maps::TRACED)?;
        let mut traced: BpfHashMap<_, u32, u32> = BpfHashMap::try_from(map).map_err(map_error)?;
        traced.insert(pid, 1, 0).map_err(map_error)
    }

    /// Processes that start a program in cgroup `id` join the trace.
    pub fn trace_cgroup(&mut self, id: u64) -> Result<(), ProbeError> {
        let map_error = map_error(maps::CGROUPS);
        let map = self.map_mut(maps::CGROUPS)?;
        let mut cgroups: BpfHashMap<_, u64, u8> = BpfHashMap::try_from(map).map_err(map_error)?;
        cgroups.insert(id, 1, 0).map_err(map_error)
    }

    /// Lets the probes read the Python frames of process `pid`.
    pub fn trace_python(&mut self, pid: u32, process: &PyProcess) -> Result<(), ProbeError> {
        let map_error = map_error(maps::PY_PROCS);
        let map = self.map_mut(maps::PY_PROCS)?;
        let mut procs: BpfHashMap<_, u32, PyProcess> =
            BpfHashMap::try_from(map).map_err(map_error)?;
        procs.insert(pid, process, 0).map_err(map_error)
    }

    /// Tells the probes where process `pid` keeps its GIL.
    pub fn trace_gil(&mut self, pid: u32, gil: &GilState) -> Result<(), ProbeError> {
        let map_error = map_error(maps::GIL_STATES);
        let map = self.map_mut(maps::GIL_STATES)?;
        let mut gils: BpfHashMap<_, u32, GilState> =
            BpfHashMap::try_from(map).map_err(map_error)?;
        gils.insert(pid, gil, 0).map_err(map_error)
    }

    /// Thread `tid` parks on `futex` when idle: a wait on it is idle time.
    pub fn set_park_futex(&mut self, tid: u32, futex: u64) -> Result<(), ProbeError> {
        let map_error = map_error(maps::PARK_FUTEXES);
        let map = self.map_mut(maps::PARK_FUTEXES)?;
        let mut parks: BpfHashMap<_, u32, u64> = BpfHashMap::try_from(map).map_err(map_error)?;
        parks.insert(tid, futex, 0).map_err(map_error)
    }

    /// Statistics of every event-loop thread seen, by tid.
    pub fn loop_stats(&self) -> Result<Vec<(u32, LoopStats)>, ProbeError> {
        let map_error = map_error(maps::LOOP_STATS);
        let map = self.map(maps::LOOP_STATS)?;
        let stats: BpfHashMap<_, u32, LoopStats> = BpfHashMap::try_from(map).map_err(map_error)?;
        let mut loops = stats
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_error)?;
        // The kernel adds a wait's idle time to the statistics when the
        // iteration after it ends; the one in between is in the thread's
        // state.
        for (tid, stats) in &mut loops {
            if let Some(state) = self.thread_state(*tid)? {
                stats.idle_ns += state.idle_before_ns;
            }
        }
        Ok(loops)
    }

    /// The state of traced thread `tid`, if it has one: in its slot of
    /// `THREADS`, or in `THREADS_OVERFLOW`.
    fn thread_state(&self, tid: u32) -> Result<Option<ThreadState>, ProbeError> {
        let slots: Array<_, ThreadState> =
            Array::try_from(self.map(maps::THREADS)?).map_err(map_error(maps::THREADS))?;
        let slot = slots
            .get(&(tid % MAX_THREADS), 0)
            .map_err(map_error(maps::THREADS))?;
        if slot.tid == u64::from(tid) {
            return Ok(Some(slot));
        }
        let overflow: BpfHashMap<_, u32, ThreadState> =
            BpfHashMap::try_from(self.map(maps::THREADS_OVERFLOW)?)
                .map_err(map_error(maps::THREADS_OVERFLOW))?;
        match overflow.get(&tid, 0) {
            Ok(state) => Ok(Some(state)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(error) => Err(map_error(maps::THREADS_OVERFLOW)(error)),
        }
    }

    /// The ring buffer of events; can be taken once.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        let map = self
            .ebpf
            .take_map(maps::EVENTS)
            .ok_or(ProbeError::MissingMap(maps::EVENTS))?;
        RingBuf::try_from(map).map_err(map_error(maps::EVENTS))
    }

    /// Per-syscall statistics summed over CPUs, for syscalls seen at least once.
    pub fn syscall_totals(&self) -> Result<Vec<SyscallTotals>, ProbeError> {
        let map_error = map_error(maps::SYSCALL_STATS);
        let map = self.map(maps::SYSCALL_STATS)?;
        let stats: PerCpuArray<_, SyscallStats> = PerCpuArray::try_from(map).map_err(map_error)?;
        let mut totals = Vec::new();
        for nr in 0..tracer_common::MAX_SYSCALL_NR {
            let per_cpu = stats.get(&nr, 0).map_err(map_error)?;
            let mut total = SyscallTotals {
                nr,
                count: 0,
                errors: 0,
                total_ns: 0,
                max_ns: 0,
                hist: vec![0; tracer_common::hist::HIST_BUCKETS],
            };
            for cpu in per_cpu.iter() {
                total.count += cpu.count;
                total.errors += cpu.errors;
                total.total_ns += cpu.total_ns;
                total.max_ns = total.max_ns.max(cpu.max_ns);
                for (sum, n) in total.hist.iter_mut().zip(cpu.hist.iter()) {
                    *sum += n;
                }
            }
            if total.count > 0 {
                totals.push(total);
            }
        }
        Ok(totals)
    }

    /// Short off-CPU spans summed by syscall (over CPUs).
    pub fn offcpu_short(&self) -> Result<Vec<ShortOffCpu>, ProbeError> {
        let map_error = map_error(maps::OFFCPU_SHORT);
        let map = self.map(maps::OFFCPU_SHORT)?;
        let totals: PerCpuArray<_, OffCpuTotals> = PerCpuArray::try_from(map).map_err(map_error)?;
        let mut rows = Vec::new();
        // By syscall number, and last the page faults' slot.
        for index in 0..=PAGE_FAULT_NR {
            let per_cpu = totals.get(&index, 0).map_err(map_error)?;
            let (count, total_ns) = per_cpu
                .iter()
                .fold((0, 0), |(c, t), v| (c + v.count, t + v.total_ns));
            if count > 0 {
                rows.push(ShortOffCpu {
                    nr: Some(index),
                    count,
                    total_ns,
                });
            }
        }
        Ok(rows)
    }

    /// Run-queue latency of the traced threads (over CPUs).
    pub fn runqueue(&self) -> Result<RunqueueLatency, ProbeError> {
        let map_error = map_error(maps::RUNQUEUE);
        let map = self.map(maps::RUNQUEUE)?;
        let latency: PerCpuArray<_, LatencyHist> = PerCpuArray::try_from(map).map_err(map_error)?;
        let mut sum = RunqueueLatency {
            hist: vec![0; HIST_BUCKETS],
            ..RunqueueLatency::default()
        };
        for cpu in latency.get(&0, 0).map_err(map_error)?.iter() {
            sum.count += cpu.count;
            sum.total_ns += cpu.total_ns;
            sum.max_ns = sum.max_ns.max(cpu.max_ns);
            for (total, n) in sum.hist.iter_mut().zip(cpu.hist.iter()) {
                *total += n;
            }
        }
        Ok(sum)
    }

    /// On-CPU and run-queue time of each live traced thread, by tid, as of
    /// `now_ns` (CLOCK_MONOTONIC): the used slots of `THREADS` and the
    /// threads in `THREADS_OVERFLOW`.
    pub fn thread_times(&self, now_ns: u64) -> Result<HashMap<u32, (u64, u64)>, ProbeError> {
        let slots: Array<_, ThreadState> =
            Array::try_from(self.map(maps::THREADS)?).map_err(map_error(maps::THREADS))?;
        let overflow: BpfHashMap<_, u32, ThreadState> =
            BpfHashMap::try_from(self.map(maps::THREADS_OVERFLOW)?)
                .map_err(map_error(maps::THREADS_OVERFLOW))?;
        let mut states = Vec::new();
        for state in slots.iter() {
            states.push(state.map_err(map_error(maps::THREADS))?);
        }
        for entry in overflow.iter() {
            states.push(entry.map_err(map_error(maps::THREADS_OVERFLOW))?.1);
        }
        let times = states
            .into_iter()
            .filter(|state| state.tid != 0)
            .map(|state| {
                let running = state.offcpu_since_ns == 0 && state.oncpu_since_ns != 0;
                let stint = if running {
                    now_ns.saturating_sub(state.oncpu_since_ns)
                } else {
                    0
                };
                (
                    state.tid as u32,
                    (state.oncpu_total_ns + stint, state.runqueue_total_ns),
                )
            })
            .collect();
        Ok(times)
    }

    /// Stops tracing: nothing is counted or streamed once this returns, so
    /// the last drain of the ring buffer and the final reads of the maps
    /// describe the same calls. The programs stay attached, idle, until
    /// [`Probes::release`]; where the kernel cannot wait for the programs
    /// running at the moment (nohz_full), they are detached now instead.
    pub fn stop(&mut self) -> Result<(), ProbeError> {
        let map_error = map_error(maps::STOPPED);
        let mut flag: Array<_, u32> =
            Array::try_from(self.map_mut(maps::STOPPED)?).map_err(map_error)?;
        flag.set(0, 1, 0).map_err(map_error)?;
        if let Err(error) = release::wait_for_running_programs() {
            log::debug!("membarrier: {error}; detaching the programs instead");
            for failure in self.detach() {
                log::warn!("cannot stop probe {failure}; the last counts may run past the report");
            }
        }
        Ok(())
    }

    /// Lets go of the programs without waiting for the kernel to detach
    /// them (see `release.rs`).
    pub fn release(self) {
        release::hold_until_exit(self.ebpf);
    }

    /// Detaches and unloads every program. Returns the names of programs
    /// that could not be unloaded.
    fn detach(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        // Each `syscalls:` tracepoint link waits out an RCU grace period as
        // it goes (~70 ms here): one after the other they took 1.3 s, side
        // by side the waits overlap.
        let mut links = Vec::new();
        for (name, id) in std::mem::take(&mut self.wait_links) {
            let program: Option<&mut TracePoint> =
                self.ebpf.program_mut(name).and_then(|p| p.try_into().ok());
            match program.map(|program| program.take_link(id)) {
                Some(Ok(link)) => links.push(link),
                Some(Err(error)) => failed.push(format!("{name}: {error}")),
                None => failed.push(format!("{name}: missing")),
            }
        }
        std::thread::scope(|scope| {
            for link in links {
                scope.spawn(move || drop(link));
            }
        });
        for (name, program) in self.ebpf.programs_mut() {
            // Programs of the other mode were never loaded.
            if program.fd().is_err() {
                continue;
            }
            let result = match program {
                Program::RawTracePoint(program) => program.unload(),
                Program::PerfEvent(program) => program.unload(),
                Program::TracePoint(program) => program.unload(),
                _ => Ok(()),
            };
            if let Err(error) = result {
                failed.push(format!("{name}: {error}"));
            }
        }
        failed
    }

    /// The kernel side's drop counters, summed over CPUs.
    pub fn drops(&self) -> Result<Drops, ProbeError> {
        let map_error = map_error(maps::COUNTERS);
        let map = self.map(maps::COUNTERS)?;
        let counters: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(map_error)?;
        let sum = |index: u32| -> Result<u64, ProbeError> {
            Ok(counters.get(&index, 0).map_err(map_error)?.iter().sum())
        };
        Ok(Drops {
            ringbuf_full: sum(counter::DROP_RINGBUF_FULL)?,
            thread_map_full: sum(counter::DROP_THREAD_MAP_FULL)?,
            kernel_stacks: sum(counter::DROP_KERNEL_STACK)?,
            process_map_full: sum(counter::DROP_PROCESS_MAP_FULL)?,
        })
    }
}

impl Probes {
    /// With `TRACER_TIME_TASK_LOOKUP` set: the asyncio Task lookups the
    /// kernel timed, and their mean cost, the clock reads taken out.
    pub fn task_lookup_cost(&self) -> Result<Option<TaskLookupCost>, ProbeError> {
        let map_error = map_error(maps::COUNTERS);
        let map = self.map(maps::COUNTERS)?;
        let counters: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(map_error)?;
        let sum = |index: u32| -> Result<u64, ProbeError> {
            Ok(counters.get(&index, 0).map_err(map_error)?.iter().sum())
        };
        let lookups = sum(counter::TASK_LOOKUPS)?;
        if lookups == 0 {
            return Ok(None);
        }
        let total = sum(counter::TASK_LOOKUP_NS)?;
        let clock = sum(counter::TASK_LOOKUP_CLOCK_NS)?;
        Ok(Some(TaskLookupCost {
            lookups,
            mean_ns: total.saturating_sub(clock) as f64 / lookups as f64,
            clock_ns: clock as f64 / lookups as f64,
        }))
    }

    fn map(&self, name: &'static str) -> Result<&Map, ProbeError> {
        self.ebpf.map(name).ok_or(ProbeError::MissingMap(name))
    }

    fn map_mut(&mut self, name: &'static str) -> Result<&mut Map, ProbeError> {
        self.ebpf.map_mut(name).ok_or(ProbeError::MissingMap(name))
    }
}

/// What the asyncio Task lookup cost per event (`TRACER_TIME_TASK_LOOKUP`).
#[derive(Debug, Clone, Copy)]
pub struct TaskLookupCost {
    pub lookups: u64,
    /// Mean time of one lookup, less `clock_ns`.
    pub mean_ns: f64,
    /// Mean time between two clock reads, taken out of the lookup's.
    pub clock_ns: f64,
}

/// Turns an error on map `name` into ours.
fn map_error(name: &'static str) -> impl Fn(MapError) -> ProbeError + Copy {
    move |source| ProbeError::Map { name, source }
}

impl KernelStacks for Probes {
    fn kernel_stack(&self, id: u32) -> Option<Vec<u64>> {
        let map = self.ebpf.map(maps::KERNEL_STACKS)?;
        let stacks = StackTraceMap::try_from(map).ok()?;
        let trace = stacks.get(&id, 0).ok()?;
        // Return addresses point after the call: step back into it, except
        // for the interrupted instruction itself.
        Some(
            trace
                .frames()
                .iter()
                .enumerate()
                .map(|(i, frame)| if i == 0 { frame.ip } else { frame.ip - 1 })
                .collect(),
        )
    }
}

/// Program `name` of the object, as its type `T`.
fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut Program>,
{
    ebpf.program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(ProbeError::MissingProgram(name))
}

/// The sampling period of the CPU profile, if there is one.
fn profile_period_ns(settings: &ProbeSettings) -> Option<u64> {
    1_000_000_000u64.checked_div(settings.profile_hz)
}

/// The programs `settings` use (those of the other mode stay unloaded).
fn programs_for(settings: &ProbeSettings) -> Vec<&'static str> {
    let mut names = if settings.lean {
        vec!["wait_syscall_enter", "wait_syscall_exit"]
    } else {
        vec!["sys_enter", "sys_exit"]
    };
    names.extend(SCHEDULER_PROGRAMS);
    names.push("sleep_capture");
    names.push("stall_sample");
    if profile_period_ns(settings).is_some() {
        names.push("profile_sample");
    }
    if settings.cgroups {
        names.push("sched_process_exec");
    }
    names
}

/// Loads programs `names` into the kernel, one thread each: the verifier
/// takes most of the attach time (40-90 ms for the larger programs here)
/// and runs on the calling thread, so side by side they use every core.
fn load_programs(ebpf: &mut Ebpf, names: &[&'static str]) -> Result<(), ProbeError> {
    let wanted: Vec<(&'static str, &mut Program)> = ebpf
        .programs_mut()
        .filter_map(|(name, program)| {
            let name = names.iter().find(|wanted| **wanted == name)?;
            Some((*name, program))
        })
        .collect();
    if let Some(missing) = names
        .iter()
        .find(|name| !wanted.iter().any(|(found, _)| found == *name))
    {
        return Err(ProbeError::MissingProgram(missing));
    }
    std::thread::scope(|scope| {
        let loads: Vec<_> = wanted
            .into_iter()
            .map(|(name, program)| (name, scope.spawn(move || load_program(program))))
            .collect();
        loads.into_iter().try_for_each(|(name, loading)| {
            let result = loading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            result.map_err(|source| ProbeError::Attach { what: name, source })
        })
    })
}

/// Loads one program of the types this object has.
fn load_program(program: &mut Program) -> Result<(), aya::programs::ProgramError> {
    match program {
        Program::RawTracePoint(program) => program.load(),
        Program::TracePoint(program) => program.load(),
        Program::PerfEvent(program) => program.load(),
        other => unreachable!("the object has no {:?} program", other.prog_type()),
    }
}

/// Attaches the loaded program `name` to raw tracepoint `tracepoint`.
fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &str,
) -> Result<(), ProbeError> {
    let program: &mut RawTracePoint = program(ebpf, name)?;
    program
        .attach(tracepoint)
        .map_err(|source| ProbeError::Attach { what: name, source })?;
    Ok(())
}

/// Attaches the loaded tracepoint program `name` to
/// `syscalls:{prefix}{call}` for each of the [`WAIT_SYSCALLS`].
fn attach_syscall_tracepoints(
    ebpf: &mut Ebpf,
    name: &'static str,
    prefix: &str,
) -> Result<Vec<TracePointLinkId>, ProbeError> {
    let program: &mut TracePoint = program(ebpf, name)?;
    let error = |source| ProbeError::Attach { what: name, source };
    WAIT_SYSCALLS
        .iter()
        .map(|call| format!("{prefix}{call}"))
        .filter(|tracepoint| syscall_tracepoint_exists(tracepoint))
        .map(|tracepoint| program.attach("syscalls", &tracepoint).map_err(error))
        .collect()
}

/// Whether the kernel has tracepoint `syscalls:{name}`: a kernel older than
/// a syscall has neither (epoll_pwait2 is 5.11), and nothing can wait in it.
fn syscall_tracepoint_exists(name: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|tracefs| {
            std::path::Path::new(tracefs)
                .join("events/syscalls")
                .join(name)
                .exists()
        })
}

/// Puts the loaded `sleep_capture` into its slot of `SLEEP_CAPTURE`, for
/// `sched_switch` to tail-call.
fn install_sleep_capture(ebpf: &mut Ebpf) -> Result<(), ProbeError> {
    const NAME: &str = "sleep_capture";
    let program: &mut RawTracePoint = program(ebpf, NAME)?;
    let error = |source| ProbeError::Attach { what: NAME, source };
    let fd = program
        .fd()
        .map_err(error)?
        .try_clone()
        .map_err(|e| error(e.into()))?;
    let map_error = map_error(maps::SLEEP_CAPTURE);
    let map = ebpf
        .map_mut(maps::SLEEP_CAPTURE)
        .ok_or(ProbeError::MissingMap(maps::SLEEP_CAPTURE))?;
    let mut slots = ProgramArray::try_from(map).map_err(map_error)?;
    slots.set(0, &fd, 0).map_err(map_error)
}

/// Attaches the loaded perf-event program `name` to a CPU clock on every
/// online CPU (the program picks the traced threads).
fn attach_sampler(
    ebpf: &mut Ebpf,
    name: &'static str,
    policy: SamplePolicy,
) -> Result<(), ProbeError> {
    let program: &mut PerfEvent = program(ebpf, name)?;
    let error = |source| ProbeError::Attach { what: name, source };
    let cpus = online_cpus().map_err(|(_, e)| ProbeError::Cpus(e))?;
    for cpu in cpus {
        program
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                policy,
                false,
            )
            .map_err(error)?;
    }
    Ok(())
}
