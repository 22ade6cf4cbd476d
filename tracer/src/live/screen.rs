//! What `tracer top` shows, as plain data: made once a second on the
//! recording thread from the report of the last 10 s (the same analyses
//! as the final report), drawn by the terminal thread (`render.rs`).

use std::collections::BTreeMap;

use crate::{
    analyze::loops::thread_name,
    metrics::events::cause_name,
    report::{
        model::{Report, StallRow},
        text::{code_line, short_path},
    },
    trace::Trace,
};

/// Stalls kept for the list (the newest first).
const STALLS_KEPT: usize = 50;
/// Rows of the blocking-site and hot-function tables.
const TOP_ROWS: usize = 10;

#[derive(Debug, Clone, Default)]
pub struct Screen {
    /// "pid 4242 (python3)": what is traced.
    pub target: String,
    pub elapsed_ns: u64,
    /// The span of the window the figures cover (10 s once running).
    pub window_ns: u64,
    pub stalls_total: u64,
    pub dropped: u64,
    pub events: u64,
    pub loops: Vec<LoopLine>,
    /// The newest first.
    pub stalls: Vec<StallLine>,
    pub blocking: Vec<SiteLine>,
    pub hot: Vec<HotLine>,
    /// The last warning the tracer logged, if any.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoopLine {
    pub tid: u32,
    pub comm: String,
    pub per_second: f64,
    /// The share of the window it was busy, 0..=1.
    pub busy: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StallLine {
    pub tid: u32,
    pub comm: String,
    /// Since the recording began.
    pub start_ns: u64,
    pub duration_ns: u64,
    /// syscall, cpu, runqueue, mixed or gil.
    pub kind: &'static str,
    /// `blocked 150 ms in clock_nanosleep`.
    pub cause: String,
    /// `stall (targets/planted_stalls.py:25)`, or "" without a stack.
    pub code: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteLine {
    /// `recvfrom on tcp:…`.
    pub call: String,
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HotLine {
    pub function: String,
    /// Shares of the window's samples, 0..=1.
    pub self_share: f64,
    pub total_share: f64,
}

/// The stalls seen so far, each once (a stall stays in the window for 10 s
/// and is analysed again each second: the latest analysis is kept).
#[derive(Default)]
pub struct StallLog {
    by_start: BTreeMap<(u64, u32), StallLine>,
}

impl StallLog {
    pub fn add(&mut self, trace: &Trace, rows: &[StallRow]) {
        for row in rows {
            self.by_start
                .insert((row.start_ns, row.tid), stall_line(trace, row));
        }
        while self.by_start.len() > STALLS_KEPT {
            self.by_start.pop_first();
        }
    }

    /// The newest first.
    pub fn lines(&self) -> Vec<StallLine> {
        self.by_start.values().rev().cloned().collect()
    }
}

fn stall_line(trace: &Trace, row: &StallRow) -> StallLine {
    StallLine {
        tid: row.tid,
        comm: thread_name(trace, row.tid),
        start_ns: row.start_ns,
        duration_ns: row.duration_ns,
        kind: cause_name(row.cause.kind),
        cause: row.cause.description.clone(),
        code: code_line(&row.cause.stack).unwrap_or_default(),
    }
}

/// The loops, blocking sites and hot functions of the window's report.
pub fn window_lines(
    report: &Report,
    window_ns: u64,
) -> (Vec<LoopLine>, Vec<SiteLine>, Vec<HotLine>) {
    let seconds = window_ns as f64 / 1e9;
    let loops = report
        .loops
        .iter()
        .map(|l| LoopLine {
            tid: l.tid,
            comm: l.comm.clone(),
            per_second: if seconds > 0.0 {
                l.iterations as f64 / seconds
            } else {
                0.0
            },
            // Of the window's time: a loop stuck in one long wait has
            // told the kernel nothing of it yet (idle time is counted as
            // each wait ends).
            busy: if window_ns > 0 {
                (l.busy_ns as f64 / window_ns as f64).min(1.0)
            } else {
                0.0
            },
            p50_ns: l.lag_p50_ns,
            p99_ns: l.lag_p99_ns,
            max_ns: l.lag_max_ns,
        })
        .collect();
    let blocking = report
        .blocking_groups
        .iter()
        .take(TOP_ROWS)
        .map(|g| SiteLine {
            call: match &g.target {
                Some(target) => format!("{} on {target}", g.syscall),
                None => g.syscall.clone(),
            },
            count: g.count,
            total_ns: g.total_ns,
            max_ns: g.max_ns,
            code: code_line(&g.stack).unwrap_or_default(),
        })
        .collect();
    let samples = report.cpu.samples.max(1) as f64;
    let hot = report
        .cpu
        .top
        .iter()
        .take(TOP_ROWS)
        .map(|f| HotLine {
            function: short_label(&f.function),
            self_share: f.self_samples as f64 / samples,
            total_share: f.total_samples as f64 / samples,
        })
        .collect();
    (loops, blocking, hot)
}

/// A profile's `function (/a/long/path/file.py)` with the path cut to its
/// last two parts, as code lines show it.
fn short_label(label: &str) -> String {
    match label.strip_suffix(')').and_then(|l| l.rsplit_once(" (")) {
        Some((function, path)) => format!("{function} ({})", short_path(path)),
        None => label.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{analyze::analyze, recording::sample};

    #[test]
    fn stalls_carry_cause_and_code_line_once_each() {
        let trace = sample::trace();
        let report = analyze(&trace);
        let mut log = StallLog::default();
        log.add(&trace, &report.stalls);
        // Seen again in the next second's window: still once.
        log.add(&trace, &report.stalls);
        let lines = log.lines();
        assert_eq!(lines.len(), report.stalls.len());
        // Newest first.
        assert!(lines[0].start_ns >= lines[lines.len() - 1].start_ns);
        let blocked = lines
            .iter()
            .find(|l| l.kind == "syscall")
            .expect("the sample trace's blocked stall");
        assert_eq!(
            blocked.cause,
            "blocked 300 ms in recvfrom on tcp:127.0.0.1:53412->127.0.0.1:8081 in task \
             'fetch-user-42' (handle_request), awaited by 'serve' ← 'main'"
        );
        assert!(
            blocked.code.starts_with("query_upstream ("),
            "{}",
            blocked.code
        );
    }

    #[test]
    fn profile_labels_lose_their_long_paths() {
        assert_eq!(
            short_label("render_report (/srv/app/demo/blocking_service.py)"),
            "render_report (demo/blocking_service.py)"
        );
        assert_eq!(short_label("pymalloc_free"), "pymalloc_free");
        assert_eq!(short_label("do_syscall_64_[k]"), "do_syscall_64_[k]");
    }

    #[test]
    fn rates_and_shares_of_the_window() {
        let trace = sample::trace();
        let report = analyze(&trace);
        let (loops, blocking, hot) = window_lines(&report, 2_000_000_000);
        let row = &report.loops[0];
        assert_eq!(loops[0].per_second, row.iterations as f64 / 2.0);
        assert_eq!(loops[0].p99_ns, row.lag_p99_ns);
        assert_eq!(loops[0].busy, (row.busy_ns as f64 / 2e9).min(1.0));
        assert_eq!(blocking.len(), report.blocking_groups.len().min(TOP_ROWS));
        assert!(
            blocking[0]
                .call
                .starts_with(&report.blocking_groups[0].syscall)
        );
        assert!(hot.iter().all(|h| h.self_share <= h.total_share));
    }
}
