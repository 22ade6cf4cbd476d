//! Loading and attaching the kernel programs, and reading their maps.

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{RawTracePoint, TracePoint},
};
use tracer_common::{SyscallStats, counter, globals, maps};

use crate::trace::{Drops, SyscallTotals};

/// The kernel object, built by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/probes"));

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "loading the eBPF programs failed: {0} (tracer needs Linux >= 5.8 with BTF, run as root)"
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
}

pub struct ProbeSettings {
    pub threshold_ns: u64,
}

pub struct Probes {
    ebpf: Ebpf,
}

impl Probes {
    /// Loads and attaches everything. Tracing starts for a process only once
    /// it is added with [`Probes::trace_process`].
    pub fn load(settings: &ProbeSettings) -> Result<Self, ProbeError> {
        let mut ebpf = EbpfLoader::new()
            .override_global(globals::THRESHOLD_NS, &settings.threshold_ns, true)
            .load(OBJECT)
            .map_err(ProbeError::Load)?;
        attach_raw_tracepoint(&mut ebpf, "sys_enter")?;
        attach_raw_tracepoint(&mut ebpf, "sys_exit")?;
        attach_tracepoint(&mut ebpf, "sched", "sched_process_exit")?;
        Ok(Self { ebpf })
    }

    /// Starts tracing every thread of process `pid`.
    pub fn trace_process(&mut self, pid: u32) -> Result<(), ProbeError> {
        let map = self
            .ebpf
            .map_mut(maps::TRACED)
            .ok_or(ProbeError::MissingMap(maps::TRACED))?;
        let mut traced: BpfHashMap<_, u32, u32> =
            BpfHashMap::try_from(map).map_err(|source| ProbeError::Map {
                name: maps::TRACED,
                source,
            })?;
        traced.insert(pid, 1, 0).map_err(|source| ProbeError::Map {
            name: maps::TRACED,
            source,
        })
    }

    /// The ring buffer of events; can be taken once.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        let map = self
            .ebpf
            .take_map(maps::EVENTS)
            .ok_or(ProbeError::MissingMap(maps::EVENTS))?;
        RingBuf::try_from(map).map_err(|source| ProbeError::Map {
            name: maps::EVENTS,
            source,
        })
    }

    /// Per-syscall statistics summed over CPUs, for syscalls seen at least once.
    pub fn syscall_totals(&self) -> Result<Vec<SyscallTotals>, ProbeError> {
        let map_error = |source| ProbeError::Map {
            name: maps::SYSCALL_STATS,
            source,
        };
        let map = self
            .ebpf
            .map(maps::SYSCALL_STATS)
            .ok_or(ProbeError::MissingMap(maps::SYSCALL_STATS))?;
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

    /// The kernel side's drop counters, summed over CPUs.
    pub fn drops(&self) -> Result<Drops, ProbeError> {
        let map_error = |source| ProbeError::Map {
            name: maps::COUNTERS,
            source,
        };
        let map = self
            .ebpf
            .map(maps::COUNTERS)
            .ok_or(ProbeError::MissingMap(maps::COUNTERS))?;
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

/// Loads program `name` and attaches it to the raw tracepoint of that name.
fn attach_raw_tracepoint(ebpf: &mut Ebpf, name: &'static str) -> Result<(), ProbeError> {
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(ProbeError::MissingProgram(name))?;
    let error = |source| ProbeError::Attach { what: name, source };
    program.load().map_err(error)?;
    program.attach(name).map_err(error)?;
    Ok(())
}

/// Loads program `name` and attaches it to tracepoint `category:name`.
fn attach_tracepoint(
    ebpf: &mut Ebpf,
    category: &str,
    name: &'static str,
) -> Result<(), ProbeError> {
    let program: &mut TracePoint = ebpf
        .program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(ProbeError::MissingProgram(name))?;
    let error = |source| ProbeError::Attach { what: name, source };
    program.load().map_err(error)?;
    program.attach(category, name).map_err(error)?;
    Ok(())
}
