//! `tracer top`: the trace of `tracer --pid`, with the same probes, shown
//! live. Once a second the recording loop takes the reading `--metrics`
//! takes (`crate::metrics::Reader`), and [`Live::update`] turns it and the
//! recorder's last 10 s into a [`screen::Screen`] with the report's own
//! analyses; a thread of its own (`ui.rs`) draws it and reads the keys.

pub mod log;
mod render;
mod screen;
mod ui;
mod window;

use std::{
    collections::HashMap,
    io::IsTerminal,
    sync::mpsc::{Sender, channel},
    thread::JoinHandle,
};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::{
    analyze::analyze,
    error::UsageError,
    metrics::snapshot::Snapshot,
    recorder::Recorder,
    trace::{Stack, StackId, TargetInfo, ThreadInfo, Trace},
};

use self::{
    screen::{Screen, StallLog, window_lines},
    window::{LoopHistory, WINDOW_NS},
};

/// `tracer top` draws on stdout: it must be a terminal.
pub fn check_terminal() -> Result<(), UsageError> {
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(UsageError(
            "tracer top needs a terminal, and stdout is not one (to record without the live view: tracer -p PID -o DIR)"
                .into(),
        ))
    }
}

/// The recording thread's side of the live view.
pub struct Live {
    screens: Option<Sender<Screen>>,
    quit: UnboundedReceiver<String>,
    thread: Option<JoinHandle<()>>,
    /// What the trace is of, for the title and the window's traces.
    target: TargetInfo,
    title: String,
    profile_hz: u64,
    lean: bool,
    history: LoopHistory,
    stalls: StallLog,
    /// Stacks symbolized so far.
    named: HashMap<StackId, Stack>,
}

impl Live {
    /// Takes the terminal (on a thread of its own). `title` names what is
    /// traced.
    pub fn start(
        target: TargetInfo,
        title: String,
        profile_hz: u64,
        lean: bool,
    ) -> std::io::Result<Self> {
        let (screens, receiver) = channel();
        let (quitter, quit) = unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("tracer-top".into())
            .spawn(move || ui::run(receiver, quitter))?;
        Ok(Self {
            screens: Some(screens),
            quit,
            thread: Some(thread),
            target,
            title,
            profile_hz,
            lean,
            history: LoopHistory::default(),
            stalls: StallLog::default(),
            named: HashMap::new(),
        })
    }

    /// Resolves when the user quits, with why.
    pub async fn quitting(&mut self) -> String {
        match self.quit.recv().await {
            Some(why) => why,
            // The terminal thread is gone without a word: it panicked.
            None => "the live view stopped".to_string(),
        }
    }

    /// A new reading, taken `elapsed_ns` after the recording began.
    pub fn update(&mut self, snapshot: &Snapshot, recorder: &Recorder, elapsed_ns: u64) {
        self.history
            .add(elapsed_ns, snapshot.loops.iter().map(|l| (l.tid, l.stats)));
        let window_ns = self.history.span_ns();
        let pid_of = |tid| snapshot.threads.get(&tid).map_or(tid, |(pid, _)| *pid);
        let mut trace = Trace::empty(self.target.clone());
        trace.duration_ns = window_ns;
        trace.profile_hz = self.profile_hz;
        trace.lean = self.lean;
        trace.loops = self.history.window(pid_of);
        trace.threads = snapshot
            .threads
            .iter()
            .map(|(&tid, (pid, comm))| ThreadInfo {
                pid: *pid,
                tid,
                comm: comm.clone(),
                oncpu_ns: None,
                runqueue_ns: None,
            })
            .collect();
        let trace = recorder.recent(elapsed_ns.saturating_sub(WINDOW_NS), trace, &mut self.named);
        let report = analyze(&trace);
        self.stalls.add(&trace, &report.stalls);
        let (loops, blocking, hot) = window_lines(&report, window_ns);
        let screen = Screen {
            target: self.title.clone(),
            elapsed_ns,
            window_ns,
            stalls_total: snapshot.events.stalls.values().map(|s| s.count).sum(),
            dropped: snapshot.drops.total(),
            events: snapshot.tracer_events,
            loops,
            stalls: self.stalls.lines(),
            blocking,
            hot,
            note: log::last(),
        };
        if let Some(screens) = &self.screens {
            // The terminal thread may have quit already.
            let _ = screens.send(screen);
        }
    }
}

impl Drop for Live {
    /// Gives the terminal back: the terminal thread sees the channel close.
    fn drop(&mut self) {
        self.screens = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
