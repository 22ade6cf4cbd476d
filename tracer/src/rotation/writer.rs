//! Writes each rotated period's report set beside the recording, on a
//! blocking thread: rendering flame graphs and timelines must not hold up
//! the ring buffer's reader.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    task::JoinHandle,
    time::{Instant, Interval, interval_at},
};

use super::name::period_dir;
use crate::{
    output::{OutputError, Outputs},
    report::publish::publish,
    trace::Trace,
};

pub struct Rotation {
    dir: PathBuf,
    quiet: bool,
    /// When the current period ends.
    pub every: Interval,
    /// SIGHUP: end the current period now.
    pub hangup: Signal,
    writes: Vec<JoinHandle<Result<PathBuf, OutputError>>>,
}

impl Rotation {
    /// Rotates every `period` into subdirectories of `dir`, from now.
    pub fn start(period: Duration, dir: PathBuf, quiet: bool) -> anyhow::Result<Self> {
        Ok(Self {
            dir,
            quiet,
            every: interval_at(Instant::now() + period, period),
            hangup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
            writes: Vec::new(),
        })
    }

    /// Where the reports of the period that started at `started_unix_ms`
    /// go (created now), with `json` and `html` besides if given.
    pub fn outputs(
        &self,
        started_unix_ms: u64,
        json: Option<PathBuf>,
        html: Option<PathBuf>,
    ) -> Result<Outputs, OutputError> {
        Outputs::prepare(json, Some(self.dir.join(period_dir(started_unix_ms))), html)
    }

    /// Writes a finished period's reports in the background.
    pub fn write(&mut self, trace: Trace) {
        let outputs = self.outputs(trace.started_unix_ms, None, None);
        let quiet = self.quiet;
        self.writes.push(tokio::task::spawn_blocking(move || {
            let outputs = outputs?;
            publish(&trace, &outputs, true)?;
            let dir = outputs.dir.unwrap_or_default();
            if !quiet {
                eprintln!("tracer: wrote {}", dir.display());
            }
            Ok(dir)
        }));
    }

    /// Waits for the periods still being written; the first failure is the
    /// error.
    pub async fn finish(self) -> anyhow::Result<()> {
        for write in self.writes {
            write.await.context("writing a rotated report")??;
        }
        Ok(())
    }
}
