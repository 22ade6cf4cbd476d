//! The terminal report. Its first lines must name the worst problem, its
//! cause and its code location, so sections come worst first.

use std::fmt::Write;

use super::model::{BlockingGroup, CpuProfile, LoopRow, Report, StallGroup, SyscallRow};
use crate::{
    duration::format_ns,
    trace::{Frame, FrameKind},
};

/// Frames shown per stack in text (JSON has them all).
const STACK_LINES: usize = 12;
/// Blocking-call groups shown in text.
const GROUPS_SHOWN: usize = 10;
/// Syscall table rows shown in text.
const SYSCALLS_SHOWN: usize = 25;

/// How the STALLS section groups stalls (`--group-by`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StallsBy {
    /// By cause: kind, syscall and code location.
    #[default]
    Cause,
    /// By asyncio Task name, digit runs collapsed (`fetch-user-*`).
    Task,
}

pub fn render(report: &Report, by: StallsBy) -> String {
    let mut out = String::new();
    header(&mut out, report);
    event_loops(&mut out, report);
    stalls(&mut out, report, by);
    blocking(&mut out, report);
    cpu(&mut out, &report.cpu);
    off_cpu(&mut out, report);
    gil_waits(&mut out, report);
    syscalls(&mut out, report);
    out
}

fn header(out: &mut String, r: &Report) {
    let command = if r.target.cmdline.is_empty() {
        r.target.comm.clone()
    } else {
        r.target.cmdline.join(" ")
    }
    .escape_debug()
    .to_string();
    let cgroup = r
        .target
        .cgroup
        .as_ref()
        .map(|name| format!("cgroup {}: ", name.escape_debug()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "tracer: {cgroup}pid {} ({command}) traced for {}, {}",
        r.target.pid,
        format_ns(r.duration_ns),
        r.ended_by
    );
    let _ = writeln!(
        out,
        "threads: {}   event loops: {}   stalls: {}   blocking calls: {}   dropped events: {}",
        r.threads.len(),
        r.loops.len(),
        r.stalls.len(),
        r.blocking.len() as u64 + r.blocking_omitted,
        r.dropped_events
    );
    let listed = |given: bool| -> Vec<String> {
        r.processes[1..]
            .iter()
            .filter(|p| p.parent.is_none() == given)
            .map(|p| format!("{} {}", p.pid, p.comm))
            .collect()
    };
    if r.processes.len() > 1 {
        for (given, title) in [(true, "also traced"), (false, "child processes followed")] {
            let processes = listed(given);
            if !processes.is_empty() {
                let _ = writeln!(out, "{title}: {}", processes.join(", "));
            }
        }
    }
    for limit in &r.kernel_limits {
        let _ = writeln!(out, "  NOTE: {limit}");
    }
    if r.dropped_events > 0 {
        let d = &r.drops;
        let _ = writeln!(
            out,
            "  WARNING: events were lost: ring buffer full {} (tracer fell behind), \
             thread table full {}, process table full {}",
            d.ringbuf_full, d.thread_map_full, d.process_map_full
        );
    }
}

fn event_loops(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "\nEVENT LOOPS (threads that wait in epoll/poll/select/io_uring)"
    );
    if r.loops.is_empty() {
        let _ = writeln!(out, "  none seen");
        if r.lean {
            let _ = writeln!(
                out,
                "  (without one, only --all-syscalls finds blocking calls: it traces every syscall)"
            );
        }
        return;
    }
    for row in &r.loops {
        loop_row(out, row);
    }
}

fn loop_row(out: &mut String, l: &LoopRow) {
    let _ = writeln!(
        out,
        "  thread {} ({}): {} iterations, busy {:.0}% of the time; \
         iteration p50 {}, p99 {}, max {}",
        l.tid,
        l.comm,
        l.iterations,
        l.utilization * 100.0,
        format_ns(l.lag_p50_ns),
        format_ns(l.lag_p99_ns),
        format_ns(l.lag_max_ns)
    );
    if l.gil_wait_ns > 0 {
        let share = l.gil_wait_ns as f64 * 100.0 / l.busy_ns.max(1) as f64;
        let held_by = l
            .gil_holder
            .as_ref()
            .map(|h| format!(", held mostly by thread {} ({})", h.tid, h.comm))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    waited {} for the GIL ({share:.0}% of its busy time){held_by}",
            format_ns(l.gil_wait_ns)
        );
    }
}

fn stalls(out: &mut String, r: &Report, by: StallsBy) {
    let (groups, by_what, more) = match by {
        StallsBy::Cause => (&r.stall_groups, "cause", "causes"),
        StallsBy::Task => (&r.stall_task_groups, "asyncio task", "tasks"),
    };
    let _ = writeln!(
        out,
        "\nSTALLS (loop iterations of {} or more, by {by_what}, most total time first)",
        format_ns(r.threshold_ns)
    );
    if groups.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    for (i, group) in groups.iter().take(GROUPS_SHOWN).enumerate() {
        stall_group(out, i + 1, group, by);
    }
    let hidden = groups.len().saturating_sub(GROUPS_SHOWN);
    if hidden > 0 {
        let _ = writeln!(out, "  ... {hidden} more {more} in the JSON report");
    }
}

fn stall_group(out: &mut String, rank: usize, g: &StallGroup, by: StallsBy) {
    let stalls = if g.count == 1 { "stall" } else { "stalls" };
    let tasks = match (by, &g.task) {
        (StallsBy::Cause, _) => String::new(),
        (StallsBy::Task, Some(pattern)) => format!(" in tasks '{pattern}'"),
        (StallsBy::Task, None) => " outside tasks".to_string(),
    };
    let _ = writeln!(
        out,
        "  {rank}. {} {stalls}{tasks}, total {}, max {}: {}",
        g.count,
        format_ns(g.total_ns),
        format_ns(g.max_ns),
        g.cause.description
    );
    stack(out, &g.cause.stack, "       ");
}

fn blocking(out: &mut String, r: &Report) {
    let what = if r.lean {
        "sleeps inside loop iterations"
    } else {
        "syscalls"
    };
    let _ = writeln!(
        out,
        "\nBLOCKING CALLS ({what} of {} or more, by call site, most total time first)",
        format_ns(r.threshold_ns)
    );
    if r.blocking_groups.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    for (i, group) in r.blocking_groups.iter().take(GROUPS_SHOWN).enumerate() {
        blocking_group(out, i + 1, group);
    }
    let hidden = r.blocking_groups.len().saturating_sub(GROUPS_SHOWN);
    if hidden > 0 {
        let _ = writeln!(out, "  ... {hidden} more call sites in the JSON report");
    }
}

fn blocking_group(out: &mut String, rank: usize, g: &BlockingGroup) {
    let on = g
        .target
        .as_deref()
        .map(|t| format!(" on {t}"))
        .unwrap_or_default();
    let calls = if g.count == 1 { "call" } else { "calls" };
    let tids: Vec<String> = g.tids.iter().map(u32::to_string).collect();
    let _ = writeln!(
        out,
        "  {rank}. {}{on}: {} {calls}, total {}, max {} (tid {})",
        g.syscall,
        g.count,
        format_ns(g.total_ns),
        format_ns(g.max_ns),
        tids.join(",")
    );
    stack(out, &g.stack, "       ");
}

/// Threads and functions shown in the CPU section.
const CPU_THREADS_SHOWN: usize = 10;
const TOP_SHOWN: usize = 10;
/// Off-CPU groups shown with their stack.
const OFFCPU_SHOWN: usize = 5;

fn cpu(out: &mut String, p: &CpuProfile) {
    if p.hz == 0 {
        let _ = writeln!(out, "\nCPU (profile off: --rate 0)");
    } else {
        let _ = writeln!(out, "\nCPU ({} Hz sampling: {} samples)", p.hz, p.samples);
    }
    if p.threads.is_empty() {
        let _ = writeln!(out, "  no thread ran");
        return;
    }
    let _ = writeln!(
        out,
        "  {:<24} {:>10} {:>12} {:>10}",
        "thread", "cpu time", "% of a core", "sampled"
    );
    for t in p.threads.iter().take(CPU_THREADS_SHOWN) {
        let name = format!("{} {}", t.tid, t.comm);
        let _ = writeln!(
            out,
            "  {name:<24} {:>10} {:>11.1}% {:>10}",
            format_ns(t.cpu_ns),
            t.core_percent,
            format_ns(t.sampled_cpu_ns)
        );
    }
    if p.samples == 0 || p.top.is_empty() {
        return;
    }
    let _ = writeln!(out, "  hottest functions, % of samples (self, total):");
    for f in p.top.iter().take(TOP_SHOWN) {
        let share = |n: u64| 100.0 * n as f64 / p.samples as f64;
        let _ = writeln!(
            out,
            "  {:>6.1}% {:>6.1}%  {}",
            share(f.self_samples),
            share(f.total_samples),
            f.function
        );
    }
}

fn off_cpu(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "\nOFF-CPU (time asleep by reason; idle is an event loop or a pool worker waiting for work)"
    );
    let totals = crate::analyze::offcpu::by_reason(&r.off_cpu);
    if totals.is_empty() {
        let _ = writeln!(out, "  none");
    }
    let width = totals
        .iter()
        .map(|(reason, _)| reason.name().len())
        .fold(8, usize::max);
    for (reason, total) in &totals {
        let _ = writeln!(out, "  {:<width$} {:>10}", reason.name(), format_ns(*total));
    }
    let waits: Vec<_> = r
        .off_cpu
        .iter()
        .filter(|row| !row.stack.is_empty())
        .take(OFFCPU_SHOWN)
        .collect();
    if !waits.is_empty() {
        let _ = writeln!(out, "  longest waits with their code:");
    }
    for row in waits {
        let on = row
            .target
            .as_deref()
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {}: {} x {}{on} (thread {})",
            row.reason.name(),
            format_ns(row.total_ns),
            row.count,
            row.syscall.as_deref().unwrap_or("?"),
            row.tid.map_or("?".to_string(), |t| t.to_string())
        );
        stack(out, &row.stack, "       ");
    }
    let q = &r.runqueue;
    let _ = writeln!(
        out,
        "\nRUN QUEUE (runnable, waiting for a CPU): {} waits, total {}; p50 {}, p99 {}, max {}",
        q.count,
        format_ns(q.total_ns),
        format_ns(q.p50_ns),
        format_ns(q.p99_ns),
        format_ns(q.max_ns)
    );
}

/// Prints a stack innermost first, cut at [`STACK_LINES`]. Where there are
/// Python or JavaScript frames, those are the code location people want: the native
/// frames (the interpreter's own) are only counted.
/// Threads that waited for a GIL, and who held it: shown only when some did.
fn gil_waits(out: &mut String, r: &Report) {
    if r.gil_waits.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nGIL WAITS (threads that waited for the interpreter lock, and who held it)"
    );
    for row in &r.gil_waits {
        let _ = writeln!(
            out,
            "  thread {} ({}): waited {} in {} waits",
            row.tid,
            row.comm,
            format_ns(row.total_ns),
            row.count
        );
        for holder in &row.holders {
            // A thread that drops the GIL waits for another to take it,
            // the GIL still naming it the last holder.
            let who = match (holder.tid, &holder.comm) {
                (Some(tid), _) if tid == row.tid => "itself, handing it over".to_string(),
                (Some(tid), Some(comm)) => format!("thread {tid} ({comm})"),
                _ => "a thread not named".to_string(),
            };
            let _ = writeln!(
                out,
                "    held by {who}: {} in {} waits{}",
                format_ns(holder.total_ns),
                holder.count,
                if holder.stack.is_empty() {
                    ""
                } else {
                    ", running:"
                }
            );
            if !holder.stack.is_empty() {
                stack(out, &holder.stack, "       ");
            }
        }
    }
}

pub fn stack(out: &mut String, frames: &[Frame], indent: &str) {
    if frames.is_empty() {
        let _ = writeln!(out, "{indent}(no stack)");
        return;
    }
    let shown = shown_frames(frames);
    for frame in shown.iter().take(STACK_LINES) {
        let _ = writeln!(out, "{indent}{}", format_frame(frame));
    }
    let cut = shown.len().saturating_sub(STACK_LINES);
    let native = frames.len() - shown.len();
    match (cut, native) {
        (0, 0) => {}
        (0, native) => {
            let _ = writeln!(out, "{indent}(+{native} native frames in the JSON report)");
        }
        (cut, _) => {
            let _ = writeln!(out, "{indent}... {} more frames", cut + native);
        }
    }
}

/// The frames a person reads: where a stack has Python frames, those (the
/// interpreter's native frames are in the JSON report).
fn shown_frames(frames: &[Frame]) -> Vec<&Frame> {
    let python = frames.iter().any(|f| f.kind.is_script());
    frames
        .iter()
        .filter(|f| !python || f.kind != FrameKind::Native)
        .collect()
}

/// The code line of a stack: its innermost frame as the report shows it.
pub fn code_line(frames: &[Frame]) -> Option<String> {
    shown_frames(frames).first().map(|f| format_frame(f))
}

/// `function (file:line[:column]) [module]`, with only the last two path components.
pub fn format_frame(frame: &Frame) -> String {
    let mut text = frame.function.clone();
    if let Some(file) = &frame.file {
        let short = short_path(file);
        match frame.position() {
            Some(position) => {
                let _ = write!(text, " ({short}:{position})");
            }
            None => {
                let _ = write!(text, " ({short})");
            }
        }
    }
    if let (Some(module), FrameKind::Native | FrameKind::Kernel) = (&frame.module, frame.kind) {
        // A pseudo-module (`[anon]`) is bracketed already.
        if module.starts_with('[') {
            let _ = write!(text, " {module}");
        } else {
            let _ = write!(text, " [{module}]");
        }
    }
    text
}

pub fn short_path(path: &str) -> &str {
    let mut cut = path.len();
    for _ in 0..2 {
        match path[..cut].rfind('/') {
            Some(slash) => cut = slash,
            None => return path,
        }
    }
    &path[cut + 1..]
}

fn syscalls(out: &mut String, r: &Report) {
    let scope = if r.lean {
        "only the poll-family and futex calls; --all-syscalls counts every call"
    } else {
        "every call of the target, like strace -c"
    };
    let _ = writeln!(out, "\nSYSCALLS ({scope})");
    if r.syscalls.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    let _ = writeln!(
        out,
        "  {:<20} {:>10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "syscall", "calls", "errors", "total", "avg", "p50", "p99", "max"
    );
    for row in r.syscalls.iter().take(SYSCALLS_SHOWN) {
        syscall_row(out, row);
    }
    let hidden = r.syscalls.len().saturating_sub(SYSCALLS_SHOWN);
    if hidden > 0 {
        let _ = writeln!(out, "  ... {hidden} more syscalls in the JSON report");
    }
}

fn syscall_row(out: &mut String, s: &SyscallRow) {
    let _ = writeln!(
        out,
        "  {:<20} {:>10} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10}",
        s.name,
        s.count,
        s.errors,
        format_ns(s.total_ns),
        format_ns(s.avg_ns),
        format_ns(s.p50_ns),
        format_ns(s.p99_ns),
        format_ns(s.max_ns)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analyze::offcpu::WaitReason,
        report::model::{
            Cause, CauseKind, CpuThread, GilHolderRow, GilWaitRow, OffCpuRow, ReportTarget,
            RunqueueRow, ThreadRef, ThreadRow, TopFunction,
        },
        trace::Drops,
    };

    fn frame(function: &str, file: Option<&str>, line: Option<u32>, kind: FrameKind) -> Frame {
        Frame {
            function: function.into(),
            file: file.map(str::to_string),
            line,
            column: None,
            module: (kind == FrameKind::Native).then(|| "libc.so.6".to_string()),
            kind,
        }
    }

    fn sample() -> Report {
        Report {
            version: 1,
            target: ReportTarget {
                pid: 4242,
                comm: "python3".into(),
                cmdline: vec!["python3".into(), "app.py".into()],
                cgroup: None,
            },
            duration_ns: 5_000_000_000,
            threshold_ns: 10_000_000,
            lean: false,
            ended_by: "duration elapsed".into(),
            dropped_events: 0,
            drops: Drops::default(),
            kernel_limits: vec![],
            processes: vec![],
            threads: vec![ThreadRow {
                pid: 4242,
                tid: 4242,
                comm: "python3".into(),
            }],
            loops: vec![LoopRow {
                pid: 4242,
                tid: 4242,
                comm: "python3".into(),
                iterations: 1200,
                busy_ns: 1_000_000_000,
                idle_ns: 4_000_000_000,
                utilization: 0.2,
                lag_p50_ns: 52_000,
                lag_p99_ns: 150_300_000,
                lag_max_ns: 150_300_000,
                gil_wait_ns: 42_000_000,
                gil_holder: Some(ThreadRef {
                    tid: 4250,
                    comm: "cruncher".into(),
                }),
            }],
            stalls: vec![],
            stall_task_groups: vec![],
            stall_groups: vec![StallGroup {
                count: 2,
                total_ns: 300_400_000,
                max_ns: 150_300_000,
                tids: vec![4242],
                task: None,
                cause: Cause {
                    description: "blocked 150 ms in clock_nanosleep".into(),
                    syscall: Some("clock_nanosleep".into()),
                    stack: vec![
                        frame(
                            "clock_nanosleep",
                            Some("/build/glibc/sysdeps/unix/clock_nanosleep.c"),
                            Some(48),
                            FrameKind::Native,
                        ),
                        frame(
                            "leaf_block",
                            Some("/srv/app.py"),
                            Some(21),
                            FrameKind::Python,
                        ),
                        frame("handler", Some("/srv/app.py"), Some(30), FrameKind::Python),
                    ],
                    ..Cause::empty(CauseKind::Syscall)
                },
            }],
            syscalls: vec![SyscallRow {
                name: "clock_nanosleep".into(),
                nr: 230,
                count: 2,
                errors: 0,
                total_ns: 300_400_000,
                avg_ns: 150_200_000,
                max_ns: 150_300_000,
                p50_ns: 150_100_000,
                p99_ns: 150_300_000,
            }],
            blocking: vec![],
            blocking_omitted: 0,
            blocking_groups: vec![BlockingGroup {
                syscall: "clock_nanosleep".into(),
                target: None,
                count: 2,
                total_ns: 300_400_000,
                max_ns: 150_300_000,
                tids: vec![4242],
                on_loop_thread: true,
                stack: vec![
                    frame(
                        "clock_nanosleep",
                        Some("/build/glibc/sysdeps/unix/clock_nanosleep.c"),
                        Some(48),
                        FrameKind::Native,
                    ),
                    frame(
                        "leaf_block",
                        Some("/srv/app.py"),
                        Some(21),
                        FrameKind::Python,
                    ),
                ],
            }],
            cpu: CpuProfile {
                hz: 99,
                samples: 200,
                threads: vec![CpuThread {
                    pid: 4242,
                    tid: 4242,
                    comm: "python3".into(),
                    cpu_ns: 2_000_000_000,
                    core_percent: 40.0,
                    samples: 200,
                    sampled_cpu_ns: 2_020_000_000,
                }],
                top: vec![TopFunction {
                    function: "render_report (/srv/app.py)".into(),
                    self_samples: 150,
                    total_samples: 190,
                }],
            },
            off_cpu: vec![OffCpuRow {
                reason: WaitReason::Sleep,
                tid: Some(4242),
                comm: Some("python3".into()),
                syscall: Some("clock_nanosleep".into()),
                target: None,
                total_ns: 300_400_000,
                count: 2,
                task: None,
                stack: vec![frame(
                    "leaf_block",
                    Some("/srv/app.py"),
                    Some(21),
                    FrameKind::Python,
                )],
            }],
            gil_waits: vec![GilWaitRow {
                tid: 4242,
                comm: "python3".into(),
                total_ns: 42_000_000,
                count: 9,
                holders: vec![GilHolderRow {
                    tid: Some(4250),
                    comm: Some("cruncher".into()),
                    total_ns: 42_000_000,
                    count: 9,
                    stack: vec![frame(
                        "crunch",
                        Some("/srv/jobs.py"),
                        Some(6),
                        FrameKind::Python,
                    )],
                }],
            }],
            runqueue: RunqueueRow {
                count: 1000,
                total_ns: 20_000_000,
                p50_ns: 9_000,
                p99_ns: 1_200_000,
                max_ns: 3_000_000,
            },
        }
    }

    /// Compares with testdata/report.txt; `UPDATE_GOLDEN=1` rewrites it.
    #[test]
    fn golden() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/report/testdata/report.txt"
        );
        let actual = render(&sample(), StallsBy::Cause);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &actual).unwrap();
        }
        assert_eq!(actual, std::fs::read_to_string(path).unwrap());
    }

    /// Lean mode says what it leaves out where it matters: the syscall table,
    /// the blocking calls, and a target without an event loop.
    #[test]
    fn lean_mode_says_what_it_traced() {
        let mut report = sample();
        report.lean = true;
        report.loops.clear();
        let text = render(&report, StallsBy::Cause);
        assert!(text.contains("SYSCALLS (only the poll-family and futex calls; --all-syscalls"));
        assert!(text.contains("BLOCKING CALLS (sleeps inside loop iterations of 10.0 ms"));
        assert!(
            text.contains("  none seen\n  (without one, only --all-syscalls finds blocking calls")
        );
        report.lean = false;
        assert!(!render(&report, StallsBy::Cause).contains("--all-syscalls"));
    }

    #[test]
    fn javascript_frames_show_their_column() {
        let mut js = frame(
            "runBuild",
            Some("/srv/app/build.js"),
            Some(12),
            FrameKind::Js,
        );
        assert_eq!(format_frame(&js), "runBuild (app/build.js:12)");
        js.column = Some(5);
        assert_eq!(format_frame(&js), "runBuild (app/build.js:12:5)");
    }

    #[test]
    fn short_paths() {
        assert_eq!(short_path("/a/b/c/d.c"), "c/d.c");
        assert_eq!(short_path("c/d.c"), "c/d.c");
        assert_eq!(short_path("d.c"), "d.c");
    }
}
