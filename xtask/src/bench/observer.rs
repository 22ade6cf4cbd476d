//! The tools compared: tracer, `strace -c` and `perf trace -s`, attached to
//! a running pid, live before the benchmark starts, stopped as Ctrl-C would.

use std::{
    fs,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;

use super::process::{Guard, Lines, Stream, cpu_time, interrupt, piped, status_kib, wchan};
use crate::command::workspace_root;

/// Attaching includes loading and verifying the eBPF programs.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);
/// Reports symbolize stacks; strace and perf print a summary.
const REPORT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Observer {
    /// tracer with default options (lean: only the syscalls an event loop
    /// waits in are traced).
    Tracer,
    /// tracer with `--all-syscalls`.
    TracerAllSyscalls,
    /// tracer with `--all-syscalls --threshold 1us`: every call is slow,
    /// streamed with its stack.
    TracerEveryCallSlow,
    Strace,
    PerfTrace,
}

impl Observer {
    fn command(self, tracer: &Path, pid: u32, report: Option<&Path>) -> Command {
        let mut command = match self {
            // Without -q, for its "attached to pid" line on stderr; the
            // report on stdout is discarded.
            Self::Tracer => Command::new(tracer),
            Self::TracerAllSyscalls => {
                let mut command = Command::new(tracer);
                command.arg("--all-syscalls");
                command
            }
            Self::TracerEveryCallSlow => {
                let mut command = Command::new(tracer);
                command.args(["--all-syscalls", "--threshold", "1us"]);
                command
            }
            Self::Strace => {
                let mut command = Command::new("strace");
                command.args(["-c", "-f"]);
                command
            }
            Self::PerfTrace => {
                let mut command = Command::new("perf");
                command.args(["trace", "-s"]);
                command
            }
        };
        if let Some(report) = report {
            command.arg("--json").arg(report);
        }
        command.args(["-p", &pid.to_string()]);
        command
    }

    fn is_tracer(self) -> bool {
        matches!(
            self,
            Self::Tracer | Self::TracerAllSyscalls | Self::TracerEveryCallSlow
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Tracer | Self::TracerAllSyscalls | Self::TracerEveryCallSlow => "tracer",
            Self::Strace => "strace",
            Self::PerfTrace => "perf trace",
        }
    }
}

/// An observer whose probes are live.
pub struct Attached {
    child: Guard,
    stderr: Lines,
    /// From its start to its probes being live.
    pub attach_time: Duration,
    /// Where tracer writes its JSON report.
    report: Option<PathBuf>,
}

/// Starts `observer` on `pid` and waits until it traces: tracer and strace
/// say so on stderr; perf trace says nothing, but it enables its events
/// before it first sleeps in poll() for them.
pub fn attach(observer: Observer, tracer: &Path, pid: u32) -> anyhow::Result<Attached> {
    let started = Instant::now();
    let report = observer
        .is_tracer()
        .then(|| workspace_root().join(format!("target/bench/tracer-of-{pid}.json")));
    let mut command = observer.command(tracer, pid, report.as_deref());
    let mut child = Guard::spawn(observer.name(), piped(&mut command, false, false, true))?;
    let mut stderr = child.lines(Stream::Stderr)?;
    let ready = match observer {
        Observer::Tracer | Observer::TracerAllSyscalls | Observer::TracerEveryCallSlow => stderr
            .wait_for("\"attached to pid\"", ATTACH_TIMEOUT, |line| {
                line.contains("attached to pid")
            })
            .map(drop),
        Observer::Strace => stderr
            .wait_for("\"attached\"", ATTACH_TIMEOUT, |line| {
                line.contains("attached")
            })
            .map(drop),
        Observer::PerfTrace => wait_for_poll(&mut child, &mut stderr),
    };
    ready.with_context(|| format!("{} did not attach to pid {pid}", observer.name()))?;
    Ok(Attached {
        child,
        stderr,
        attach_time: started.elapsed(),
        report,
    })
}

/// An observer that stopped on SIGINT.
pub struct Ended {
    /// From SIGINT to its exit.
    pub report_time: Duration,
    /// tracer: the syscalls its report counted (in the default mode, those
    /// of the wait family only).
    pub syscalls_counted: Option<u64>,
}

/// The sum of the counts in the syscall table of tracer's JSON report,
/// which is then removed (one is written per traced pid).
fn syscalls_counted(report: &Path) -> anyhow::Result<u64> {
    let text =
        fs::read_to_string(report).with_context(|| format!("cannot read {}", report.display()))?;
    fs::remove_file(report).with_context(|| format!("cannot remove {}", report.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", report.display()))?;
    let rows = json["syscalls"]
        .as_array()
        .with_context(|| format!("no syscall table in {}", report.display()))?;
    Ok(rows.iter().filter_map(|row| row["count"].as_u64()).sum())
}

fn wait_for_poll(child: &mut Guard, stderr: &mut Lines) -> anyhow::Result<()> {
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    while !wchan(child.pid()).contains("poll") {
        if let Some(status) = child.try_wait()? {
            bail!("perf trace exited ({status}): {:?}", stderr.drain());
        }
        if Instant::now() >= deadline {
            bail!("perf trace did not start polling within {ATTACH_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

impl Attached {
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Its CPU time so far (all threads, user + system).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time(self.pid())
    }

    /// Its peak resident set so far, in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        status_kib(self.pid(), "VmHWM")
    }

    /// Sends SIGINT and returns the time until it exited (its report time).
    pub fn interrupt(mut self) -> anyhow::Result<Ended> {
        let started = Instant::now();
        interrupt(self.pid())?;
        self.wait(true)?;
        let report_time = started.elapsed();
        let syscalls_counted = match &self.report {
            Some(path) => Some(syscalls_counted(path)?),
            None => None,
        };
        Ok(Ended {
            report_time,
            syscalls_counted,
        })
    }

    /// Waits for it to exit by itself (as all three do when their target
    /// exits).
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.wait(false)
    }

    fn wait(&mut self, interrupted: bool) -> anyhow::Result<()> {
        let status = self.child.wait(REPORT_TIMEOUT)?;
        // strace reports Ctrl-C as exit status 130 or re-raises SIGINT;
        // anything else but success is a failed run, not a measurement.
        let ok = status.success()
            || (interrupted
                && (status.code() == Some(130) || status.signal() == Some(libc::SIGINT)));
        if !ok {
            bail!(
                "{} failed ({status}): {:?}",
                self.child.name(),
                self.stderr.drain()
            );
        }
        Ok(())
    }
}
