//! Command-line interface: flags, their parsing and validation.

use std::{ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{duration::parse_duration, error::UsageError, report::text::StallsBy};

const USAGE: &str = "\
sudo tracer [OPTIONS] --pid <PID>[,<PID>...]
       sudo tracer [OPTIONS] --cgroup <PATH>
       sudo tracer [OPTIONS] -- <CMD>...
       tracer report [OPTIONS] <FILE>";

const EXAMPLES: &str = "\
Examples:
  sudo tracer --pid 4242                  trace a running service until Ctrl-C
  sudo tracer -p 4242 -d 30s -o out/      30 seconds; every report (text, JSON, timeline) in out/
  sudo tracer --threshold 50ms -p 4242    only calls and stalls of 50 ms or more
  sudo tracer -p 4242 --children          also its worker processes: those running now and those it starts
  sudo tracer -p 4242,4243,4250           several processes in one trace (until all have exited)
  sudo tracer --cgroup /system.slice/api.service
                                          every process of a cgroup v2, also those started later
  sudo tracer -p 4242 --all-syscalls      every syscall: strace -c table, every thread's calls
  sudo tracer -p 4242 --group-by task     stalls by asyncio Task name (fetch-user-*), not by cause
  sudo tracer -- python3 app.py           start a command (and its children) from its first instruction
  sudo tracer -p 4242 --json report.json  the machine-readable report too
  sudo tracer -p 4242 -d 30s --html r.html  the whole report as one page for a browser
  sudo tracer -p 4242 --record api.rec    save the recording, to render the reports again later
  tracer report api.rec -o out/           the reports of a recording, again (no root, no target)
  sudo tracer top -p 4242                 a live view of its loops, stalls and hot code (see tracer top --help)
  sudo tracer -p 4242 --metrics 127.0.0.1:9464
                                          Prometheus metrics at http://127.0.0.1:9464/metrics while tracing
  sudo tracer -p 4242 -o out/ --rotate 10m
                                          long runs: a complete report set every 10 minutes in out/<start time>/

Exit status: 0 done, 1 could not trace (no such process, no privileges, ...),
2 the command line is wrong.";

const TOP_USAGE: &str = "\
sudo tracer top [OPTIONS] --pid <PID>[,<PID>...]
       sudo tracer top [OPTIONS] --cgroup <PATH>";

const TOP_EXAMPLES: &str = "\
Examples:
  sudo tracer top --pid 4242              watch a running service's event loops live; q quits
  sudo tracer top -p 4242 -o out/         the same, and every report in out/ when you quit
  sudo tracer top -p 4242 --children -d 5m
                                          its workers too, for five minutes at most

Keys: s cycles the loop table's order (busy, p99 lag, max lag, iterations/s),
p or space pauses the display (recording goes on), q or Ctrl-C quits.

Exit status: 0 done, 1 could not trace (no such process, no privileges, ...),
2 the command line is wrong, or stdout is not a terminal.";

const REPORT_EXAMPLES: &str = "\
Examples:
  tracer report api.rec                   the text report of a recording
  tracer report api.rec -o out/ -q        every report (text, JSON, timeline) in out/
  tracer report api.rec --json r.json     the machine-readable report
  tracer report api.rec --html r.html     the whole report as one page for a browser

Exit status: 0 done, 1 the file cannot be read or is not a recording,
2 the command line is wrong.";

/// Find what blocks a service's event loop, and where its time goes — with
/// eBPF, without restarting it or changing its code.
#[derive(Parser, Debug)]
#[command(
    name = "tracer",
    version,
    long_version = crate::install::version::long_version(),
    override_usage = USAGE,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub action: Option<Action>,

    #[command(flatten)]
    pub trace: TraceArgs,
}

/// What to trace and how: the options of a trace, and of `tracer top`.
#[derive(Args, Debug)]
pub struct TraceArgs {
    /// Trace the running process with this pid (all its threads). Several
    /// processes: -p 10,11,12 or -p 10 -p 11; the first is the target the
    /// report is named after, and recording ends when all have exited.
    #[arg(short, long, value_name = "PID", value_delimiter = ',')]
    pub pid: Vec<u32>,

    /// Trace every process of this cgroup v2 and of its descendant cgroups
    /// (a Kubernetes pod, a systemd service), those inside now and those
    /// started there later, until Ctrl-C or --duration. A directory of the
    /// cgroup2 mount, or its path as /proc/PID/cgroup shows it.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["pid", "children"])]
    pub cgroup: Option<PathBuf>,

    /// With --pid: also trace its descendants, those already running (a
    /// pre-fork server's workers) and those it starts from now on (forked
    /// workers, exec'd programs). A command after -- is always followed.
    #[arg(long, requires = "pid")]
    pub children: bool,

    /// Stop after this long (e.g. 10s, 500ms, 2m); default: until Ctrl-C or
    /// the target exits.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// A syscall that takes at least this long is a blocking call, reported
    /// with its stack.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = parse_duration)]
    pub threshold: Duration,

    /// Off-CPU profile: a syscall that sleeps at least this long is recorded
    /// with its stack; shorter sleeps are summed by syscall.
    #[arg(long, value_name = "DURATION", default_value = "1ms", value_parser = parse_duration)]
    pub offcpu_min: Duration,

    /// Trace every syscall, not only those an event loop waits in: adds the
    /// per-syscall table (like strace -c) and the blocking calls and off-CPU
    /// stacks of every thread, for about 4x the cost per syscall.
    #[arg(long)]
    pub all_syscalls: bool,

    /// CPU profile sampling rate in Hz (0 turns the profile off). Each
    /// sample interrupts every CPU and costs the sampled thread a few µs:
    /// 49 Hz (as bcc's profile) keeps that near 0.1 % of a busy service.
    #[arg(long, value_name = "HZ", default_value_t = 49)]
    pub rate: u64,

    #[command(flatten)]
    pub outputs: OutputArgs,

    /// Also save everything recorded to this file, for `tracer report FILE`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics while tracing (e.g.
    /// 127.0.0.1:9464): loop iteration times, stalls, blocking calls, off-CPU
    /// and CPU time per loop thread (docs/metrics.md).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,

    /// With --output DIR: every PERIOD (e.g. 10m, 1h), write a complete
    /// report set of that period into DIR/<start time>/ and let go of it, so
    /// memory stays flat; SIGHUP writes one at once.
    #[arg(long, value_name = "PERIOD", value_parser = parse_duration)]
    pub rotate: Option<Duration>,

    /// More diagnostics on stderr (-vv for debug output).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The command to start and trace, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Where the reports go: the same for a live trace and a recording.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write every report into this directory (created if missing):
    /// report.txt, report.html, report.json, timeline.json (for Perfetto), ...
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Also write the whole report as one HTML page to this file: stalls,
    /// timeline, flame graphs, tables; it opens from disk, offline.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Print no report and no progress on the terminal (files are still
    /// written).
    #[arg(short, long)]
    pub quiet: bool,

    /// Group the stalls of the text report by cause, or by the asyncio
    /// Task they ran in, digit runs collapsed: --group-by task shows
    /// "3 stalls in tasks 'fetch-user-*'" (report.json has both).
    #[arg(long, value_name = "BY", default_value = "cause")]
    pub group_by: StallsBy,
}

#[derive(Subcommand, Debug)]
pub enum Action {
    /// A live view of the loops while tracing: each loop thread's
    /// iterations/s, busy time and lag over the last 10 s, the last stalls
    /// with their cause and code line, the top blocking call sites and the
    /// hottest functions, refreshed each second. Keys: s sort, p or space
    /// pause, q or Ctrl-C quit. With -o DIR the reports are written on quit.
    #[command(
        override_usage = TOP_USAGE,
        after_help = TOP_EXAMPLES,
    )]
    Top(TraceArgs),
    /// Render the reports of a recording (made with --record) again: needs
    /// no root and no target.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// The man page or a shell's completions, for packages.
    #[command(hide = true)]
    Generate(crate::install::generate::GenerateArgs),
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The recording, from `sudo tracer --record FILE ...`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// What to trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// Running processes, each once, in the order given: the first is the
    /// target the report is named after.
    Pids(Vec<u32>),
    /// The processes of a cgroup v2 (the path given) and its descendants.
    Cgroup(PathBuf),
    Command(Vec<OsString>),
}

/// Smallest and largest accepted `--threshold`.
const MIN_THRESHOLD: Duration = Duration::from_micros(1);
const MAX_THRESHOLD: Duration = Duration::from_secs(3600);
/// Highest `--rate`: beyond it sampling itself costs the target.
const MAX_RATE: u64 = 10_000;
/// Shortest `--rotate` period: each one is a whole report set on disk.
const MIN_ROTATE: Duration = Duration::from_secs(1);

impl TraceArgs {
    /// Checks what clap cannot: exactly one target, sane durations.
    pub fn target(&self) -> Result<TargetSpec, UsageError> {
        let given = [
            !self.pid.is_empty(),
            self.cgroup.is_some(),
            !self.command.is_empty(),
        ];
        if given.iter().filter(|&&g| g).count() > 1 {
            return Err(UsageError(
                "give one of --pid, --cgroup or a command after --, not several".into(),
            ));
        }
        if let Some(path) = &self.cgroup {
            return Ok(TargetSpec::Cgroup(path.clone()));
        }
        match (self.pid.is_empty(), self.command.is_empty()) {
            (true, true) => Err(UsageError(
                "nothing to trace: give --pid PID, --cgroup PATH or a command after -- (see --help)"
                    .into(),
            )),
            (false, _) => pids(&self.pid).map(TargetSpec::Pids),
            (true, false) => Ok(TargetSpec::Command(self.command.clone())),
        }
    }

    pub fn validate(&self) -> Result<TargetSpec, UsageError> {
        if self.duration == Some(Duration::ZERO) {
            return Err(UsageError(
                "--duration must be above 0 (leave it out to trace until Ctrl-C)".into(),
            ));
        }
        if !(MIN_THRESHOLD..=MAX_THRESHOLD).contains(&self.offcpu_min) {
            return Err(UsageError(format!(
                "--offcpu-min must be between 1us and 1h, not {:?}",
                self.offcpu_min
            )));
        }
        if self.rate > MAX_RATE {
            return Err(UsageError(format!(
                "--rate must be at most {MAX_RATE} Hz, not {}",
                self.rate
            )));
        }
        if !(MIN_THRESHOLD..=MAX_THRESHOLD).contains(&self.threshold) {
            return Err(UsageError(format!(
                "--threshold must be between 1us and 1h, not {:?}",
                self.threshold
            )));
        }
        self.check_rotate()?;
        self.target()
    }

    /// `tracer top`: the checks of a trace, and what a live view rules out.
    pub fn validate_top(&self) -> Result<TargetSpec, UsageError> {
        if self.rotate.is_some() {
            return Err(UsageError(
                "tracer top does not take --rotate: a live view is one session (use --rotate without top)"
                    .into(),
            ));
        }
        if !self.command.is_empty() {
            return Err(UsageError(
                "tracer top watches running processes (--pid or --cgroup): a command started with -- would write over the screen; start it elsewhere and give its pid"
                    .into(),
            ));
        }
        self.validate()
    }

    fn check_rotate(&self) -> Result<(), UsageError> {
        let Some(period) = self.rotate else {
            return Ok(());
        };
        if period < MIN_ROTATE {
            return Err(UsageError(format!(
                "--rotate must be at least 1s, not {period:?}"
            )));
        }
        if self.outputs.output.is_none() {
            return Err(UsageError(
                "--rotate needs --output DIR: each period's reports go into a subdirectory of it"
                    .into(),
            ));
        }
        if self.record.is_some() {
            return Err(UsageError(
                "--rotate and --record do not go together: each period's reports are written instead"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The pids given, each once, in the order first given (`-p 10,11,10`
/// traces 10 and 11, 10 being the target).
fn pids(given: &[u32]) -> Result<Vec<u32>, UsageError> {
    if given.contains(&0) {
        return Err(UsageError("--pid must be a process id above 0".into()));
    }
    let mut unique = Vec::with_capacity(given.len());
    for &pid in given {
        if !unique.contains(&pid) {
            unique.push(pid);
        }
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tracer").chain(args.iter().copied()))
    }

    #[test]
    fn pid_and_defaults() {
        let cli = parse(&["--pid", "42"]).unwrap();
        assert_eq!(cli.trace.validate().unwrap(), TargetSpec::Pids(vec![42]));
        assert_eq!(cli.trace.threshold, Duration::from_millis(10));
        assert_eq!(cli.trace.duration, None);
    }

    #[test]
    fn several_pids() {
        let listed = parse(&["-p", "10,11,12"]).unwrap();
        assert_eq!(
            listed.trace.validate().unwrap(),
            TargetSpec::Pids(vec![10, 11, 12])
        );
        let repeated = parse(&["-p", "12", "--pid", "10,12", "-p", "11"]).unwrap();
        assert_eq!(
            repeated.trace.validate().unwrap(),
            TargetSpec::Pids(vec![12, 10, 11])
        );
        assert!(parse(&["-p", "1,notanumber"]).is_err());
        assert!(parse(&["-p", "1,"]).is_err());
        let zero = parse(&["-p", "1,0"]).unwrap();
        assert!(zero.trace.validate().unwrap_err().0.contains("above 0"));
        assert!(parse(&["-p", "1,2", "--children"]).unwrap().trace.children);
    }

    #[test]
    fn command_after_double_dash() {
        let cli = parse(&["-d", "2s", "--", "python3", "-c", "pass"]).unwrap();
        assert_eq!(cli.trace.duration, Some(Duration::from_secs(2)));
        assert_eq!(
            cli.trace.validate().unwrap(),
            TargetSpec::Command(vec!["python3".into(), "-c".into(), "pass".into()])
        );
    }

    #[test]
    fn report_subcommand() {
        let cli = parse(&["report", "a.rec", "-o", "out", "-q"]).unwrap();
        let Some(Action::Report(args)) = cli.action else {
            panic!("no report subcommand: {cli:?}");
        };
        assert_eq!(args.file, PathBuf::from("a.rec"));
        assert_eq!(args.outputs.output, Some(PathBuf::from("out")));
        let html = parse(&["report", "a.rec", "--html", "r.html"]).unwrap();
        let Some(Action::Report(html)) = html.action else {
            panic!("no report subcommand");
        };
        assert_eq!(html.outputs.html, Some(PathBuf::from("r.html")));
        assert!(args.outputs.quiet);
        assert!(parse(&["report"]).is_err());
        assert!(parse(&["--pid", "1", "report", "a.rec"]).is_err());
        assert!(parse(&["--children", "--", "ls"]).is_err());
        assert!(parse(&["-p", "1", "--children"]).unwrap().trace.children);
        let record = parse(&["-p", "1", "--record", "a.rec"]).unwrap();
        assert_eq!(record.trace.record, Some(PathBuf::from("a.rec")));
        assert!(record.action.is_none());
    }

    #[test]
    fn a_command_named_report_is_traced() {
        let cli = parse(&["--", "report", "x"]).unwrap();
        assert!(cli.action.is_none());
        assert_eq!(
            cli.trace.validate().unwrap(),
            TargetSpec::Command(vec!["report".into(), "x".into()])
        );
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&["--pid", "abc"]).is_err());
        assert!(parse(&["--pid", "1", "-d", "10"]).is_err());
        let both = parse(&["--pid", "1", "--", "ls"]).unwrap();
        assert!(both.trace.validate().unwrap_err().0.contains("not several"));
        let cgroup_and_command = parse(&["--cgroup", "/x", "--", "ls"]).unwrap();
        assert!(
            cgroup_and_command
                .trace
                .validate()
                .unwrap_err()
                .0
                .contains("not several")
        );
        assert!(parse(&["--cgroup", "/x", "-p", "1"]).is_err());
        assert!(parse(&["--cgroup", "/x", "--children"]).is_err());
        assert_eq!(
            parse(&["--cgroup", "/system.slice/a.service"])
                .unwrap()
                .trace
                .validate()
                .unwrap(),
            TargetSpec::Cgroup(PathBuf::from("/system.slice/a.service"))
        );
        let none = parse(&[]).unwrap();
        assert!(
            none.trace
                .validate()
                .unwrap_err()
                .0
                .contains("nothing to trace")
        );
        let zero = parse(&["--pid", "1", "-d", "0s"]).unwrap();
        assert!(zero.trace.validate().unwrap_err().0.contains("above 0"));
        let tiny = parse(&["--pid", "1", "--threshold", "0s"]).unwrap();
        assert!(tiny.trace.validate().unwrap_err().0.contains("between"));
        let pid0 = parse(&["--pid", "0"]).unwrap();
        assert!(pid0.trace.validate().is_err());
    }

    #[test]
    fn metrics_and_rotation() {
        let cli = parse(&[
            "-p",
            "1",
            "--metrics",
            "127.0.0.1:9464",
            "-o",
            "d",
            "--rotate",
            "2s",
        ])
        .unwrap();
        assert_eq!(cli.trace.metrics, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(cli.trace.rotate, Some(Duration::from_secs(2)));
        assert!(cli.trace.validate().is_ok());
        assert!(parse(&["-p", "1", "--metrics", "9464"]).is_err());
        let zero = parse(&["-p", "1", "-o", "d", "--rotate", "0s"]).unwrap();
        assert!(zero.trace.validate().unwrap_err().0.contains("at least 1s"));
        let no_dir = parse(&["-p", "1", "--rotate", "1m"]).unwrap();
        assert!(
            no_dir
                .trace
                .validate()
                .unwrap_err()
                .0
                .contains("needs --output")
        );
        let record = parse(&["-p", "1", "-o", "d", "--rotate", "1m", "--record", "r"]).unwrap();
        assert!(record.trace.validate().unwrap_err().0.contains("--record"));
    }

    #[test]
    fn top_subcommand_takes_the_trace_options() {
        let cli = parse(&["top", "-p", "10,11", "--children", "-d", "30s", "-o", "out"]).unwrap();
        let Some(Action::Top(args)) = cli.action else {
            panic!("no top subcommand: {cli:?}");
        };
        assert_eq!(args.validate_top().unwrap(), TargetSpec::Pids(vec![10, 11]));
        assert!(args.children);
        assert_eq!(args.duration, Some(Duration::from_secs(30)));
        assert_eq!(args.outputs.output, Some(PathBuf::from("out")));
        let Some(Action::Top(cgroup)) = parse(&["top", "--cgroup", "/x"]).unwrap().action else {
            panic!("no top subcommand");
        };
        assert_eq!(
            cgroup.validate_top().unwrap(),
            TargetSpec::Cgroup(PathBuf::from("/x"))
        );
        let Some(Action::Top(rotate)) = parse(&["top", "-p", "1", "-o", "d", "--rotate", "1m"])
            .unwrap()
            .action
        else {
            panic!("no top subcommand");
        };
        assert!(rotate.validate_top().unwrap_err().0.contains("--rotate"));
        let Some(Action::Top(command)) = parse(&["top", "--", "python3", "app.py"]).unwrap().action
        else {
            panic!("no top subcommand");
        };
        assert!(
            command
                .validate_top()
                .unwrap_err()
                .0
                .contains("--pid or --cgroup")
        );
        assert!(parse(&["-p", "1", "top"]).is_err());
        assert!(parse(&["top", "--cgroup", "/x", "-p", "1"]).is_err());
    }
}
