//! A live trace from start to report: check the request, attach, record until
//! the duration ends, a signal arrives or the targets exit, then report.

use std::{net::SocketAddr, os::fd::OwnedFd, time::Duration};

use anyhow::Context;
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{Signal, SignalKind, signal},
    time::{Instant, interval, sleep_until},
};

use crate::{
    abort,
    cgroup_watch::CgroupWatch,
    cli::{TargetSpec, TraceArgs},
    clock::{monotonic_ns, unix_ms},
    live::{self, Live},
    loop_series::LoopSeries,
    metrics::{Reader, exposition::Shared, server},
    output::{self, Outputs},
    privileges,
    probes::{ProbeSettings, Probes},
    progress::{Counts, Progress},
    recorder::{Ending, ProbeUpdate, Recorder},
    recording,
    report::publish::publish,
    rotation::{counters::KernelCounters, writer::Rotation},
    target::{self, Descendant, Launched, cgroup::Cgroup},
    trace::{TargetInfo, Trace},
};

/// How often the event loops' statistics are read for their time series.
const LOOP_SERIES_PERIOD: Duration = Duration::from_millis(100);

/// How often the ring buffer is read for the records that do not wake us
/// (CPU samples: a wake-up costs the sampled CPU more than the sample).
const BATCH_DRAIN_PERIOD: Duration = Duration::from_millis(50);

/// How often, and how long, a started command is checked for a runtime.
const RUNTIME_WATCH_PERIOD: Duration = Duration::from_millis(5);
const RUNTIME_WATCH_TIME: Duration = Duration::from_secs(5);

/// `tracer --pid …`: trace, then report.
pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let spec = args.validate()?;
    trace(args, spec, false).await
}

/// `tracer top --pid …`: the same trace, shown live until the user quits.
pub async fn top(args: TraceArgs) -> anyhow::Result<()> {
    let spec = args.validate_top()?;
    live::check_terminal()?;
    trace(args, spec, true).await
}

async fn trace(cli: TraceArgs, spec: TargetSpec, top: bool) -> anyhow::Result<()> {
    let outputs = Outputs::prepare(
        cli.outputs.json.clone(),
        cli.outputs.output.clone(),
        cli.outputs.html.clone(),
    )?
    .grouping_stalls_by(cli.outputs.group_by);
    if let Some(path) = &cli.record {
        output::check_file(path)?;
    }
    privileges::check()?;
    // Caught from before the "attached" line on: a Ctrl-C right after it
    // must stop the recording, not kill the tracer without a report.
    let signals = StopSignals::catch()?;
    let quiet = cli.outputs.quiet;
    // Listening before the probes load: a port in use costs no attach.
    let exporter = match cli.metrics {
        Some(addr) => Some(serve_metrics(addr, quiet).await?),
        None => None,
    };
    let settings = ProbeSettings {
        threshold_ns: cli.threshold.as_nanos() as u64,
        offcpu_min_ns: cli.offcpu_min.as_nanos() as u64,
        profile_hz: cli.rate,
        // A started command's children are its work (a shell script, a
        // server forking workers), as are a cgroup's; a running service's
        // only when asked.
        follow_children: cli.children
            || matches!(&spec, TargetSpec::Command(_) | TargetSpec::Cgroup(_)),
        several_processes: matches!(&spec, TargetSpec::Pids(pids) if pids.len() > 1),
        cgroups: matches!(&spec, TargetSpec::Cgroup(_)),
        lean: !cli.all_syscalls,
    };
    let session = Session::start(&spec, settings, cli.children)?;
    if !quiet {
        eprintln!("tracer: {}", session.attached_line(cli.duration));
    }
    // Threads made from here on (the live view's) inherit the lower
    // priority.
    yield_to_the_target();
    let rotation = match (cli.rotate, &outputs.dir) {
        (Some(period), Some(dir)) => Some(Rotation::start(period, dir.clone(), quiet)?),
        _ => None,
    };
    let live = match top {
        true => Some(
            Live::start(
                session.target.clone(),
                session.title(),
                cli.rate,
                !cli.all_syscalls,
            )
            .context("cannot start the live view")?,
        ),
        false => None,
    };
    let extras = Extras {
        exporter,
        rotation,
        live,
        reader: Reader::default(),
    };
    // The live view shows progress, and its report is only written.
    let (trace, rotation) = session
        .record(cli.duration, quiet || top, signals, extras)
        .await?;
    // Either output is written even if the other fails.
    let saved = cli
        .record
        .as_ref()
        .map(|path| recording::save(path, &trace));
    match rotation {
        Some(rotation) => {
            let last = rotation.outputs(
                trace.started_unix_ms,
                outputs.json.clone(),
                outputs.html.clone(),
            )?;
            publish(&trace, &last, quiet)?;
            rotation.finish().await?;
        }
        None => publish(&trace, &outputs, quiet || top)?,
    }
    saved.transpose()?;
    if top && !quiet {
        eprintln!("tracer: {}", live_summary(&trace, &outputs));
    }
    Ok(())
}

/// What `tracer top` says as it ends: how the trace ended, and where its
/// reports are.
fn live_summary(trace: &Trace, outputs: &Outputs) -> String {
    let written = match (&outputs.dir, &outputs.json) {
        (Some(dir), _) => format!("reports in {}", dir.display()),
        (None, Some(json)) => format!("report in {}", json.display()),
        (None, None) => "no report written (-o DIR keeps them)".to_string(),
    };
    format!(
        "{} after {:.1} s, {} stalls; {written}",
        trace.ended_by,
        trace.duration_ns as f64 / 1e9,
        trace.stalls.len()
    )
}

/// Starts serving `--metrics` on `addr`.
async fn serve_metrics(addr: SocketAddr, quiet: bool) -> anyhow::Result<Shared> {
    let exporter = Shared::default();
    let bound = server::serve(addr, exporter.clone()).await?;
    if !quiet {
        eprintln!("tracer: metrics at http://{bound}/metrics");
    }
    Ok(exporter)
}

/// What a recording does besides recording.
struct Extras {
    /// `--metrics`: the latest reading, served.
    exporter: Option<Shared>,
    rotation: Option<Rotation>,
    /// `tracer top`: the live view.
    live: Option<Live>,
    /// Takes the readings the exporter and the live view show.
    reader: Reader,
}

/// Once attached, the tracer's bursts of work (unwinding and naming the
/// first stacks, the report) give way to the service it traces: its nice
/// value goes up by 10 (from wherever the user set it).
fn yield_to_the_target() {
    // SAFETY: nice() changes this thread's priority and touches no memory
    // but errno, which it may set (and -1 can be a new nice value, so errno
    // is cleared first). The tracer records on this one thread (the
    // current-thread runtime).
    let failed = unsafe {
        *libc::__errno_location() = 0;
        libc::nice(10) == -1 && *libc::__errno_location() != 0
    };
    if failed {
        log::debug!(
            "cannot lower the tracer's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The signals that end a recording, caught for the whole run.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn catch() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }
}

/// A target with the probes attached and recording.
struct Session {
    /// The first target: the report is named after it.
    target: TargetInfo,
    /// The other pids given to trace.
    others: Vec<u32>,
    /// The descendants of the targets already running at attach (with
    /// `--children`).
    descendants: Vec<Descendant>,
    /// Set when we started the command ourselves (we reap it).
    launched_pid: Option<u32>,
    /// With `--cgroup`: the cgroup, rescanned while recording.
    cgroup: Option<CgroupWatch>,
    /// One per target given: recording ends when all are readable.
    pidfds: Vec<OwnedFd>,
    probes: Probes,
    recorder: Recorder,
    settings: ProbeSettings,
    /// When the current period started (the recording, if not rotating).
    period_start_ns: u64,
    period_started_unix_ms: u64,
    /// The kernel's counts at the start of the current period.
    baseline: KernelCounters,
}

impl Session {
    /// Attaches to the targets; with `children`, to the descendants of
    /// running targets too.
    fn start(spec: &TargetSpec, settings: ProbeSettings, children: bool) -> anyhow::Result<Self> {
        let Resolved {
            targets,
            launched,
            cgroup,
        } = resolve(spec)?;
        // From here on, an error drops `launched`, which kills and reaps
        // the command before it ever ran. A cgroup is traced until Ctrl-C
        // or the duration: its processes come and go.
        let pidfds = match &cgroup {
            Some(_) => Vec::new(),
            None => targets
                .iter()
                .map(|t| target::open_pidfd(t.pid))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut targets = targets.into_iter();
        let Some(target) = targets.next() else {
            anyhow::bail!("nothing to trace");
        };
        let others: Vec<u32> = targets.map(|t| t.pid).collect();
        let mut probes = Probes::load(&settings, target.pid)?;
        let start_ns = monotonic_ns();
        let started_unix_ms = unix_ms();
        let mut recorder = Recorder::new(start_ns, settings.threshold_ns, settings.offcpu_min_ns);
        probes.trace_process(target.pid)?;
        recorder.add_process(target.pid);
        for &pid in &others {
            probes.trace_process(pid)?;
            recorder.add_traced(pid, None);
        }
        // The descendants already running (a pre-fork server's workers):
        // looked for only now that the fork tracepoint is live and the
        // targets are in the kernel's map, so that a worker forked during
        // the walk is either in /proc when it is read or followed by the
        // kernel; walked first, one forked in between would be in neither.
        // A started command has none yet.
        let descendants = if children && launched.is_none() {
            let roots: Vec<u32> = std::iter::once(target.pid)
                .chain(others.iter().copied())
                .collect();
            trace_running_descendants(&roots, &mut probes, &mut recorder)?
        } else {
            Vec::new()
        };
        let mut cgroup = cgroup.map(CgroupWatch::new);
        if let Some(watch) = &mut cgroup {
            watch.refresh(&mut probes, &mut recorder)?;
        }
        apply_updates(&mut recorder, &mut probes)?;
        let launched_pid = launched.as_ref().map(|l| l.pid);
        if let Some(launched) = launched {
            release(launched, &target)?;
        }
        Ok(Self {
            target,
            others,
            descendants,
            launched_pid,
            cgroup,
            pidfds,
            probes,
            recorder,
            settings,
            period_start_ns: start_ns,
            period_started_unix_ms: started_unix_ms,
            baseline: KernelCounters::default(),
        })
    }

    async fn record(
        mut self,
        duration: Option<Duration>,
        quiet: bool,
        mut signals: StopSignals,
        mut extras: Extras,
    ) -> anyhow::Result<(Trace, Option<Rotation>)> {
        let ring = self.probes.take_events()?;
        // SAFETY: the ring buffer owns its fd and keeps it open while it is
        // registered (AsyncFd owns the ring buffer).
        let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
            .context("cannot poll the ring buffer")?;
        let exited = watch_exits(std::mem::take(&mut self.pidfds))?;
        let started = Instant::now();
        let deadline = duration.map(|d| started + d);
        let mut ticks = interval(Duration::from_secs(1));
        let mut loop_reads = interval(LOOP_SERIES_PERIOD);
        let mut batch_drains = interval(BATCH_DRAIN_PERIOD);
        let mut series = LoopSeries::default();
        // A started command is watched until its runtime is known, so that
        // its first events already carry Python frames.
        let mut runtime_checks = interval(RUNTIME_WATCH_PERIOD);
        let watch_until = self.launched_pid.map(|_| started + RUNTIME_WATCH_TIME);
        let mut progress = Progress::new(quiet);
        self.refresh(&mut extras);
        let ended_by = loop {
            tokio::select! {
                guard = ring.readable_mut() => {
                    let mut guard = guard.context("polling the ring buffer")?;
                    drain(guard.get_inner_mut(), &mut self.recorder, &self.probes);
                    guard.clear_ready();
                    apply_updates(&mut self.recorder, &mut self.probes)?;
                }
                _ = all_exited(&exited), if !exited.is_empty() => break self.exit_reason(),
                _ = signals.interrupt.recv() => break "interrupted (Ctrl-C)".to_string(),
                _ = signals.terminate.recv() => break "terminated (SIGTERM)".to_string(),
                _ = sleep_until(deadline.unwrap_or(started)), if deadline.is_some() => {
                    break "duration elapsed".to_string();
                }
                _ = runtime_checks.tick(), if watch_until.is_some_and(|t| Instant::now() < t) => {
                    let pid = self.target.pid;
                    if !self.recorder.is_python(pid) {
                        self.recorder.watch_runtime(pid);
                        apply_updates(&mut self.recorder, &mut self.probes)?;
                    }
                }
                _ = batch_drains.tick() => {
                    drain(ring.get_mut(), &mut self.recorder, &self.probes);
                    apply_updates(&mut self.recorder, &mut self.probes)?;
                }
                _ = loop_reads.tick() => {
                    let now = monotonic_ns().saturating_sub(self.period_start_ns);
                    series.read(now, &self.probes.loop_stats()?);
                }
                _ = ticks.tick() => {
                    if let Some(watch) = &mut self.cgroup {
                        watch.refresh(&mut self.probes, &mut self.recorder)?;
                        apply_updates(&mut self.recorder, &mut self.probes)?;
                    }
                    let dropped = self.probes.drops().map(|d| d.total()).unwrap_or(0);
                    progress.update(self.target.pid, Counts { elapsed_s: started.elapsed().as_secs(), events: self.recorder.events, stalls: self.recorder.stalls(), dropped });
                    self.refresh(&mut extras);
                }
                why = live_quit(&mut extras.live) => break why,
                Some(why) = next_rotation(&mut extras.rotation) => {
                    drain(ring.get_mut(), &mut self.recorder, &self.probes);
                    let end_ns = monotonic_ns();
                    let ending = self.ending(why.to_string(), end_ns, &mut series)?;
                    let period = self.recorder.take_period(ending, end_ns);
                    self.period_start_ns = end_ns;
                    self.period_started_unix_ms = unix_ms();
                    if let Some(rotation) = extras.rotation.as_mut() {
                        rotation.write(period);
                    }
                }
            }
        };
        progress.finish();
        // The terminal back at once, before the last reading and the report.
        drop(extras.live.take());
        if let Some(cost) = self.probes.task_lookup_cost()? {
            eprintln!(
                "tracer: asyncio task lookup: {} at events, {:.0} ns each (less {:.0} ns of clock reads)",
                cost.lookups, cost.mean_ns, cost.clock_ns
            );
        }
        abort::second_interrupt_aborts(quiet);
        drop(exited);
        self.probes.stop()?;
        drain(ring.get_mut(), &mut self.recorder, &self.probes);
        let ending = self.ending(ended_by, monotonic_ns(), &mut series)?;
        self.probes.release();
        Ok((self.recorder.finish(ending), extras.rotation))
    }

    /// What ends the current period at `end_ns`: the kernel's counts since
    /// its start, and the loops' windows.
    fn ending(
        &mut self,
        ended_by: String,
        end_ns: u64,
        series: &mut LoopSeries,
    ) -> anyhow::Result<Ending> {
        let duration_ns = end_ns.saturating_sub(self.period_start_ns);
        let now = KernelCounters::read(&self.probes, end_ns)?;
        series.read(duration_ns, &now.loops);
        let kernel = now.since(&self.baseline);
        let earlier = std::mem::replace(&mut self.baseline, now);
        Ok(Ending {
            target: self.target.clone(),
            started_unix_ms: self.period_started_unix_ms,
            duration_ns,
            threshold_ns: self.settings.threshold_ns,
            offcpu_min_ns: self.settings.offcpu_min_ns,
            lean: self.settings.lean,
            profile_hz: self.settings.profile_hz,
            ended_by,
            kernel,
            earlier_thread_times: earlier.thread_times,
            loop_windows: series.take_period(),
            kernel_limits: self.probes.kernel_limits().to_vec(),
            cgroup: self.cgroup.as_ref().map(|watch| watch.cgroup.name.clone()),
        })
    }

    /// The once-a-second reading, for `--metrics` and the live view.
    fn refresh(&self, extras: &mut Extras) {
        if extras.exporter.is_none() && extras.live.is_none() {
            return;
        }
        let snapshot = match extras
            .reader
            .read(&self.probes, &self.recorder, monotonic_ns())
        {
            Ok(snapshot) => snapshot,
            Err(error) => {
                log::warn!("cannot read the probes' counts: {error}");
                return;
            }
        };
        if let Some(live) = &mut extras.live {
            let elapsed_ns = monotonic_ns().saturating_sub(self.period_start_ns);
            live.update(&snapshot, &self.recorder, elapsed_ns);
        }
        if let Some(exporter) = &extras.exporter {
            exporter.set(snapshot);
        }
    }

    /// What `tracer top` shows as the target: the first, and how many more.
    fn title(&self) -> String {
        let more = self.others.len() + self.descendants.len();
        let cgroup = self
            .cgroup
            .as_ref()
            .map(|watch| format!("cgroup {}: ", watch.cgroup.name))
            .unwrap_or_default();
        let mut title = format!("{cgroup}pid {} ({})", self.target.pid, self.target.comm);
        if more > 0 {
            title.push_str(&format!(" and {more} more"));
        }
        title
    }

    fn exit_reason(&self) -> String {
        if !self.others.is_empty() {
            return "every target exited".to_string();
        }
        match self.launched_pid.and_then(target::reap) {
            Some(status) => format!("target exited ({status})"),
            None => "target exited".to_string(),
        }
    }

    /// What was attached to, and until when it records: "attached to pid
    /// 10 (python3) and pids 11, 12, and 4 processes they had started (13,
    /// 14, 15, 16), recording until Ctrl-C or their exit".
    fn attached_line(&self, duration: Option<Duration>) -> String {
        let cgroup = self
            .cgroup
            .as_ref()
            .map(|watch| format!("cgroup {}: ", watch.cgroup.name))
            .unwrap_or_default();
        let mut line = format!(
            "attached to {cgroup}pid {} ({})",
            self.target.pid, self.target.comm
        );
        let several = !self.others.is_empty();
        if several {
            let pids = pid_list(self.others.iter().copied());
            let noun = if self.others.len() == 1 {
                "pid"
            } else {
                "pids"
            };
            line.push_str(&format!(" and {noun} {pids}"));
        }
        if !self.descendants.is_empty() {
            let count = self.descendants.len();
            let pids = pid_list(self.descendants.iter().map(|d| d.pid));
            let noun = if count == 1 { "process" } else { "processes" };
            let (joint, who) = if several {
                (", and", "they")
            } else {
                (" and", "it")
            };
            line.push_str(&format!(
                "{joint} {count} {noun} {who} had started ({pids})"
            ));
        }
        let until = match duration {
            Some(d) => format!("for {}", crate::duration::format_ns(d.as_nanos() as u64)),
            None if self.cgroup.is_some() => "until Ctrl-C".to_string(),
            None if several => "until Ctrl-C or their exit".to_string(),
            None => "until Ctrl-C or its exit".to_string(),
        };
        format!("{line}, recording {until}")
    }
}

/// What to attach to, the first target first.
struct Resolved {
    targets: Vec<TargetInfo>,
    /// The command started, held at its gate.
    launched: Option<Launched>,
    cgroup: Option<Cgroup>,
}

/// The processes the user named (every pid checked before the probes load:
/// a typo costs no attach), those in the cgroup named, or the command
/// started, held at its gate.
fn resolve(spec: &TargetSpec) -> anyhow::Result<Resolved> {
    let (targets, launched) = match spec {
        TargetSpec::Pids(pids) => (target::inspect_all(pids)?, None),
        TargetSpec::Cgroup(path) => {
            let cgroup = Cgroup::resolve(path)?;
            let targets = target::cgroup::inspect_members(&cgroup)?;
            return Ok(Resolved {
                targets,
                launched: None,
                cgroup: Some(cgroup),
            });
        }
        TargetSpec::Command(argv) => {
            let launched = target::launch(argv)?;
            let target = TargetInfo {
                pid: launched.pid,
                comm: argv[0]
                    .to_string_lossy()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                cmdline: argv
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            };
            (vec![target], Some(launched))
        }
    };
    Ok(Resolved {
        targets,
        launched,
        cgroup: None,
    })
}

fn pid_list(pids: impl Iterator<Item = u32>) -> String {
    pids.map(|pid| pid.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Traces the descendants of `roots` that run already, as the kernel's fork
/// tracking does for the ones born later (see `target::trace_descendants`
/// for why each is traced before its own children are looked for).
fn trace_running_descendants(
    roots: &[u32],
    probes: &mut Probes,
    recorder: &mut Recorder,
) -> anyhow::Result<Vec<Descendant>> {
    let found = target::trace_descendants(roots, |d| probes.trace_process(d.pid))?;
    for d in &found {
        log::info!(
            "tracing process {}, started by {} before attach",
            d.pid,
            d.parent
        );
        recorder.add_traced(d.pid, Some(d.parent));
    }
    Ok(found)
}

/// The targets' pidfds, watched for their exits.
fn watch_exits(pidfds: Vec<OwnedFd>) -> anyhow::Result<Vec<AsyncFd<OwnedFd>>> {
    pidfds
        .into_iter()
        .map(|pidfd| {
            // SAFETY: the AsyncFd owns the pidfd, which stays open (and the
            // same file) until the AsyncFd is dropped.
            unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
                .map_err(|e| e.into_parts().1)
                .context("cannot watch the target")
        })
        .collect()
}

/// Resolves once every target has exited. A pidfd stays readable once its
/// process is gone (its readiness is never cleared), so this can be dropped
/// and made again on each turn of the recording loop without losing an exit.
async fn all_exited(pidfds: &[AsyncFd<OwnedFd>]) {
    for pidfd in pidfds {
        // An error (the fd is no longer watched) counts as an exit: the
        // process cannot be waited for any more.
        let _ = pidfd.readable().await;
    }
}

fn release(launched: Launched, target: &TargetInfo) -> anyhow::Result<()> {
    launched.release(&target.comm)?;
    Ok(())
}

/// Tells the probes what the recorder learnt.
fn apply_updates(recorder: &mut Recorder, probes: &mut Probes) -> anyhow::Result<()> {
    for update in recorder.take_updates() {
        match update {
            ProbeUpdate::Python { pid, process, gil } => {
                probes.trace_python(pid, &process)?;
                if let Some(gil) = gil {
                    probes.trace_gil(pid, &gil)?;
                }
            }
            ProbeUpdate::ParkFutex { tid, futex } => probes.set_park_futex(tid, futex)?,
        }
    }
    Ok(())
}

/// Resolves when the user quits the live view, with why. Never, without one.
async fn live_quit(live: &mut Option<Live>) -> String {
    match live {
        Some(live) => live.quitting().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the current period ends, with why: its time is up, or
/// SIGHUP. Never, when not rotating.
async fn next_rotation(rotation: &mut Option<Rotation>) -> Option<&'static str> {
    let Some(rotation) = rotation else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = rotation.every.tick() => Some("period elapsed (--rotate)"),
        _ = rotation.hangup.recv() => {
            // The next period is a full one from now.
            rotation.every.reset();
            Some("rotated (SIGHUP)")
        }
    }
}

fn drain(ring: &mut RingBuf<MapData>, recorder: &mut Recorder, probes: &Probes) {
    while let Some(record) = ring.next() {
        recorder.handle(&record, probes);
    }
}
