//! Child processes for the benchmarks: killed when dropped, their output
//! read line by line with deadlines, their CPU time and memory read from /proc.

use std::{
    fs,
    io::{BufRead, BufReader, Read},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A child that is killed and reaped when dropped, so that no benchmark
/// target or tracer outlives a failed run.
pub struct Guard {
    child: Child,
    name: String,
}

impl Guard {
    pub fn spawn(name: &str, command: &mut Command) -> anyhow::Result<Self> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        Ok(Self {
            child,
            name: name.to_string(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its piped stdout or stderr, read by a thread so it never blocks on a
    /// full pipe.
    pub fn lines(&mut self, stream: Stream) -> anyhow::Result<Lines> {
        let pipe: Box<dyn Read + Send> = match stream {
            Stream::Stdout => Box::new(self.child.stdout.take().context("stdout not piped")?),
            Stream::Stderr => Box::new(self.child.stderr.take().context("stderr not piped")?),
        };
        Ok(Lines::read(pipe))
    }

    /// Closes its stdin (the targets take that as "exit").
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    pub fn stdin(&mut self) -> anyhow::Result<&mut std::process::ChildStdin> {
        self.child.stdin.as_mut().context("stdin not piped")
    }

    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("cannot wait for {}", self.name))
    }

    /// Waits for it to exit; kills it and fails after `timeout`. Polls every
    /// millisecond, which is the precision of the exit times measured here.
    pub fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("{} did not exit within {timeout:?}; killed it", self.name);
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The lines of a pipe, in order, as they arrive.
pub struct Lines {
    receiver: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn read(pipe: Box<dyn Read + Send>) -> Self {
        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            receiver,
            seen: Vec::new(),
        }
    }

    /// The first line that `matches`; fails with the lines seen so far if
    /// the pipe closes or `timeout` passes first.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) if matches(&line) => return Ok(line),
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    bail!("no {what} within {timeout:?}; output: {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("output ended before {what}; output: {:?}", self.seen)
                }
            }
        }
    }

    /// Lines that arrived so far and did not match a `wait_for`.
    pub fn drain(&mut self) -> &[String] {
        self.seen.extend(self.receiver.try_iter());
        &self.seen
    }
}

/// User + system CPU time of a process and all its threads, from
/// /proc/PID/stat (in clock ticks of 10 ms).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("field {n} of {path} is not a number: {stat:?}"))
    };
    let ticks = field(14)? + field(15)?;
    Ok(Duration::from_millis(ticks * 10))
}

/// Time a process's threads have run, to the microsecond: the scheduler's
/// `se.sum_exec_runtime` (ms) of each /proc/PID/task/TID/sched. (The ticks
/// of /proc/PID/stat are 10 ms: too coarse to tell 1 % in a 5 s run.)
pub fn run_time(pid: u32) -> anyhow::Result<Duration> {
    let tasks = format!("/proc/{pid}/task");
    let mut total_ms = 0.0;
    for task in fs::read_dir(&tasks).with_context(|| format!("cannot list {tasks}"))? {
        let path = task?.path().join("sched");
        // A thread that exited since the listing has nothing left to add.
        let Ok(sched) = fs::read_to_string(&path) else {
            continue;
        };
        total_ms += sched
            .lines()
            .find_map(|line| line.strip_prefix("se.sum_exec_runtime"))
            .and_then(|rest| {
                rest.trim_start_matches([' ', ':'])
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .with_context(|| format!("no se.sum_exec_runtime in {}", path.display()))?;
    }
    Ok(Duration::from_secs_f64(total_ms / 1000.0))
}

/// A line of /proc/PID/status in KiB, e.g. `VmHWM` (peak resident set).
pub fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {key} in {path}"))
}

/// Where the process sleeps in the kernel, from /proc/PID/wchan.
pub fn wchan(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// Sends SIGINT, as Ctrl-C would.
pub fn interrupt(pid: u32) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill() only sends a signal; the pid is our own unreaped child.
    if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
        bail!(
            "cannot send SIGINT to {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// `command` with stdin, stdout and stderr as the benchmarks use them.
pub fn piped(command: &mut Command, stdin: bool, stdout: bool, stderr: bool) -> &mut Command {
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    command
        .stdin(pipe(stdin))
        .stdout(pipe(stdout))
        .stderr(pipe(stderr))
}
