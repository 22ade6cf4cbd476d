//! `timeline.json`: the trace on a time axis, in the Chrome Trace Event
//! format that ui.perfetto.dev and chrome://tracing open (docs/timeline.md).
//! One track per thread, event loops first: stalls and blocking calls as
//! slices, CPU samples as instants, and each loop's activity as counters.
//!
//! Loop iterations are not one slice each (a busy loop runs thousands a
//! second, and a 60 s trace would not open): the kernel's per-100 ms
//! windows become two counters per loop, busy % and iterations/s, so the
//! file grows with the trace's duration and its stalls, not with traffic.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    model::{Cause, CauseKind, Report, StallRow},
    text::format_frame,
};
use crate::{
    analyze::offcpu,
    duration::format_ns,
    syscalls,
    trace::{BlockingCall, Frame, FrameKind, LoopWindow, ThreadInfo, Trace},
};

/// Frames listed in an event's details.
const FRAMES_SHOWN: usize = 8;

/// One event of the Chrome Trace Event format. Times in microseconds since
/// the start of the recording.
#[derive(Debug, Serialize)]
struct Event {
    name: String,
    /// Phase: M metadata, X complete slice, i instant, C counter.
    ph: &'static str,
    pid: u32,
    tid: u32,
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    /// Scope of an instant: "t", the thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    /// A colour chrome://tracing reserves ("terrible" is red).
    #[serde(skip_serializing_if = "Option::is_none")]
    cname: Option<&'static str>,
    args: Value,
}

impl Event {
    /// Names and sorts a track.
    fn meta(name: &str, pid: u32, tid: u32, args: Value) -> Self {
        Self::new("M", name.into(), pid, tid, 0, args)
    }

    fn new(ph: &'static str, name: String, pid: u32, tid: u32, ns: u64, args: Value) -> Self {
        Self {
            name,
            ph,
            pid,
            tid,
            ts: us(ns),
            dur: None,
            cat: None,
            s: None,
            cname: None,
            args: without_nulls(args),
        }
    }
}

pub fn render(trace: &Trace, report: &Report) -> String {
    let mut events = tracks(trace, report);
    events.extend(report.stalls.iter().map(stall));
    events.extend(blocking_calls(trace));
    events.extend(off_cpu_spans(trace));
    events.extend(samples(trace));
    events.extend(loop_counters(trace));
    let about = json!({
        "target": report.target.cmdline.join(" "),
        "pid": report.target.pid,
        "started_unix_ms": trace.started_unix_ms,
        "duration": format_ns(trace.duration_ns),
        "threshold": format_ns(trace.threshold_ns),
        "ended_by": trace.ended_by,
    });
    // One event a line, so that `grep STALL timeline.json` works. These
    // values (strings, numbers, string-keyed maps) always serialize.
    let lines: Vec<String> = events
        .iter()
        .filter_map(|e| serde_json::to_string(e).ok())
        .collect();
    format!(
        "{{\"displayTimeUnit\":\"ms\",\"otherData\":{about},\"traceEvents\":[\n{}\n]}}\n",
        lines.join(",\n")
    )
}

/// Names of the processes and threads, event-loop threads sorted first.
fn tracks(trace: &Trace, report: &Report) -> Vec<Event> {
    let loops: Vec<u32> = report.loops.iter().map(|l| l.tid).collect();
    let mut threads: Vec<&ThreadInfo> = trace.threads.iter().collect();
    let rank = |tid| loops.iter().position(|&l| l == tid).unwrap_or(usize::MAX);
    threads.sort_by_key(|t| (rank(t.tid), t.tid));
    let mut named = BTreeMap::new();
    let mut events = Vec::new();
    for (index, thread) in threads.iter().enumerate() {
        named
            .entry(thread.pid)
            .or_insert_with(|| process_name(trace, thread.pid));
        let name = if loops.contains(&thread.tid) {
            format!("{} (event loop)", thread.comm)
        } else {
            thread.comm.clone()
        };
        let (pid, tid) = (thread.pid, thread.tid);
        events.push(Event::meta(
            "thread_name",
            pid,
            tid,
            json!({ "name": name }),
        ));
        events.push(Event::meta(
            "thread_sort_index",
            pid,
            tid,
            json!({ "sort_index": index }),
        ));
    }
    for (pid, name) in named {
        // The target first, then the children it started.
        let index = u32::from(pid != trace.target.pid);
        events.push(Event::meta(
            "process_name",
            pid,
            pid,
            json!({ "name": name }),
        ));
        events.push(Event::meta(
            "process_sort_index",
            pid,
            pid,
            json!({ "sort_index": index }),
        ));
    }
    events
}

fn process_name(trace: &Trace, pid: u32) -> String {
    let process = trace.processes.iter().find(|p| p.pid == pid);
    let main_thread = trace.threads.iter().find(|t| t.tid == pid);
    process
        .map(|p| &p.comm)
        .or(main_thread.map(|t| &t.comm))
        .map_or_else(|| format!("pid {pid}"), String::clone)
}

fn stall(row: &StallRow) -> Event {
    let cause = &row.cause;
    let name = format!("STALL {}: {}", format_ns(row.duration_ns), headline(cause));
    let args = json!({
        "cause": cause.description,
        "kind": cause.kind,
        "syscall": cause.syscall,
        "fd": cause.fd,
        "target": cause.target,
        "on_cpu": format_ns(row.on_cpu_ns),
        "blocked": format_ns(row.blocked_ns),
        "runqueue": format_ns(row.runqueue_ns),
        "code": code_frames(&cause.stack),
    });
    Event {
        dur: Some(us(row.duration_ns)),
        cat: Some("stall"),
        cname: Some("terrible"),
        ..Event::new("X", name, row.pid, row.tid, row.start_ns, args)
    }
}

/// The cause in a few words: `blocked in recvfrom`, `on CPU in render`.
fn headline(cause: &Cause) -> String {
    let syscall = cause.syscall.as_deref();
    match (cause.kind, syscall) {
        (CauseKind::Syscall, Some(name)) => format!("blocked in {name}"),
        (CauseKind::Syscall, None) => "blocked".into(),
        (CauseKind::Cpu, _) => match cause.stack.first() {
            Some(frame) => format!("on CPU in {}", frame.function),
            None => "on CPU".into(),
        },
        (CauseKind::Runqueue, _) => "waiting for a CPU".into(),
        (CauseKind::Mixed, Some(name)) => format!("on CPU and blocked in {name}"),
        (CauseKind::Mixed, None) => "on CPU and blocked".into(),
        (CauseKind::Gil, _) => match &cause.gil_holder {
            Some(holder) => format!("waiting for the GIL ({})", holder.comm),
            None => "waiting for the GIL".into(),
        },
    }
}

/// Syscalls of the threshold or more (the trace also streams shorter
/// ones that slept, for the off-CPU profile).
fn blocking_calls(trace: &Trace) -> impl Iterator<Item = Event> + '_ {
    trace
        .blocking
        .iter()
        .filter(|call| call.duration_ns >= trace.threshold_ns)
        .map(|call| {
            let args = json!({
                "fd": call.fd,
                "target": call.target,
                "off_cpu": format_ns(call.blocked_ns),
                "ret": call.ret,
                "code": code_frames(stack(trace, call.stack)),
            });
            call_slice(call, "syscall", syscalls::name(call.nr), args)
        })
}

/// Calls that slept at least `--offcpu-min`, named by why they slept: the
/// off-CPU profile on the time axis. A blocking call's span lies on its
/// syscall slice.
fn off_cpu_spans(trace: &Trace) -> impl Iterator<Item = Event> + '_ {
    trace
        .blocking
        .iter()
        .filter(|call| call.blocked_ns >= trace.offcpu_min_ns)
        .map(|call| {
            let args = json!({
                "syscall": syscalls::name(call.nr),
                "target": call.target,
                "asleep": format_ns(call.blocked_ns),
                "code": code_frames(stack(trace, call.stack)),
            });
            let name = format!("off-CPU: {}", offcpu::call_reason(trace, call).name());
            call_slice(call, "off_cpu", name, args)
        })
}

/// A slice on the call's thread for as long as the call ran.
fn call_slice(call: &BlockingCall, cat: &'static str, name: String, args: Value) -> Event {
    Event {
        dur: Some(us(call.duration_ns)),
        cat: Some(cat),
        ..Event::new("X", name, call.pid, call.tid, call.start_ns, args)
    }
}

fn samples(trace: &Trace) -> impl Iterator<Item = Event> + '_ {
    trace.samples.iter().map(|sample| {
        let code = code_frames(stack(trace, sample.stack));
        let top = stack(trace, sample.stack)
            .iter()
            .find(|f| f.kind != FrameKind::Truncated)
            .map_or("?", |f| f.function.as_str());
        let args = json!({ "code": code, "for_stall": sample.for_stall });
        Event {
            cat: Some("cpu"),
            s: Some("t"),
            ..Event::new(
                "i",
                format!("CPU: {top}"),
                sample.pid,
                sample.tid,
                sample.time_ns,
                args,
            )
        }
    })
}

/// Busy % and iterations/s of each event loop over time; a value is only
/// written when it changes.
fn loop_counters(trace: &Trace) -> Vec<Event> {
    let mut by_tid: BTreeMap<u32, Vec<&LoopWindow>> = BTreeMap::new();
    for window in &trace.loop_windows {
        by_tid.entry(window.tid).or_default().push(window);
    }
    let mut events = Vec::new();
    for (tid, mut windows) in by_tid {
        windows.sort_by_key(|w| w.start_ns);
        let pid = trace
            .threads
            .iter()
            .find(|t| t.tid == tid)
            .map_or(trace.target.pid, |t| t.pid);
        let mut last = (None, None);
        for (ns, busy, rate) in loop_points(&windows) {
            if last.0 != Some(busy) {
                let name = format!("loop {tid} busy");
                events.push(Event::new("C", name, pid, tid, ns, json!({ "%": busy })));
            }
            if last.1 != Some(rate) {
                let name = format!("loop {tid} iterations");
                events.push(Event::new(
                    "C",
                    name,
                    pid,
                    tid,
                    ns,
                    json!({ "per s": rate }),
                ));
            }
            last = (Some(busy), Some(rate));
        }
    }
    events
}

/// (time, busy %, iterations/s) from which each value holds. Windows hold
/// the iterations that ended in them, so an iteration longer than its
/// window began in the quiet time before: its busy time is spread back over
/// that time, which keeps busy % at most 100. Quiet time reads 0.
fn loop_points(windows: &[&LoopWindow]) -> Vec<(u64, f64, f64)> {
    let mut points = Vec::new();
    let mut prev_end = 0;
    for window in windows {
        let end = window.start_ns.saturating_add(window.duration_ns);
        let start = window
            .start_ns
            .min(end.saturating_sub(window.busy_ns))
            .max(prev_end);
        if start >= end {
            continue;
        }
        if start > prev_end {
            points.push((prev_end, 0.0, 0.0));
        }
        let span = (end - start) as f64;
        let busy = (window.busy_ns as f64 * 100.0 / span).min(100.0);
        let rate = window.iterations as f64 * 1e9 / span;
        points.push((start, round1(busy), round1(rate)));
        prev_end = end;
    }
    if prev_end > 0 {
        points.push((prev_end, 0.0, 0.0));
    }
    points
}

fn stack(trace: &Trace, id: u32) -> &[Frame] {
    trace.stacks.get(id as usize).map_or(&[], Vec::as_slice)
}

/// The frames people look for, innermost first: where there are Python or JavaScript
/// frames, the interpreter's own native frames are left out (as in the
/// text report).
fn code_frames(stack: &[Frame]) -> Vec<String> {
    let python = stack.iter().any(|f| f.kind.is_script());
    stack
        .iter()
        .filter(|f| !python || f.kind != FrameKind::Native)
        .take(FRAMES_SHOWN)
        .map(format_frame)
        .collect()
}

/// Microseconds, to the nanosecond.
fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Drops the details that are not known (null), rather than show "null".
fn without_nulls(mut args: Value) -> Value {
    if let Value::Object(map) = &mut args {
        map.retain(|_, value| !value.is_null());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analyze::analyze,
        recording::sample::{self, CHILD_PID, LOOP_TID, WORKER_TID},
    };

    fn timeline() -> (Value, Report) {
        let trace = sample::trace();
        let report = analyze(&trace);
        let json = serde_json::from_str(&render(&trace, &report)).expect("valid JSON");
        (json, report)
    }

    fn events<'a>(json: &'a Value, ph: &str) -> Vec<&'a Value> {
        json["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == ph)
            .collect()
    }

    #[test]
    fn stalls_are_slices_with_their_cause() {
        let (json, report) = timeline();
        assert_eq!(json["displayTimeUnit"], "ms");
        let stalls: Vec<&Value> = events(&json, "X")
            .into_iter()
            .filter(|e| e["cat"] == "stall")
            .collect();
        assert_eq!(stalls.len(), report.stalls.len());
        let first = stalls[0];
        assert_eq!(first["name"], "STALL 301 ms: blocked in recvfrom");
        assert_eq!(first["tid"], LOOP_TID);
        assert_eq!(first["ts"], 500_000.0);
        assert_eq!(first["dur"], 301_234.567);
        assert_eq!(first["args"]["syscall"], "recvfrom");
        assert_eq!(first["args"]["fd"], 7);
        assert_eq!(
            first["args"]["target"],
            "tcp:127.0.0.1:53412->127.0.0.1:8081"
        );
        // Python frames only: the interpreter's native frames are left out.
        assert_eq!(
            first["args"]["code"],
            json!([
                "query_upstream (srv/app.py:46)",
                "handle (srv/app.py:66)",
                "main (srv/app.py:93)"
            ])
        );
        assert_eq!(
            first["args"]["cause"],
            "blocked 300 ms in recvfrom on tcp:127.0.0.1:53412->127.0.0.1:8081 \
             in task 'fetch-user-42' (handle_request), awaited by 'serve' ← 'main'"
        );
        assert_eq!(stalls[1]["name"], "STALL 200 ms: on CPU in render_report");
    }

    #[test]
    fn blocking_calls_and_samples() {
        let (json, _) = timeline();
        let calls: Vec<&Value> = events(&json, "X")
            .into_iter()
            .filter(|e| e["cat"] == "syscall")
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["name"], "recvfrom");
        assert_eq!(calls[0]["args"]["off_cpu"], "300 ms");
        assert_eq!(calls[0]["dur"], 300_400.0);
        assert_eq!(calls[1]["name"], "clock_nanosleep");
        assert_eq!(calls[1]["tid"], WORKER_TID);
        assert!(calls[1]["args"].get("fd").is_none(), "{}", calls[1]);
        let samples = events(&json, "i");
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0]["name"], "CPU: long_mul");
        assert_eq!(samples[0]["s"], "t");
        assert_eq!(samples[1]["args"]["for_stall"], true);
    }

    #[test]
    fn off_cpu_spans_say_why() {
        let (json, _) = timeline();
        let spans: Vec<&Value> = events(&json, "X")
            .into_iter()
            .filter(|e| e["cat"] == "off_cpu")
            .collect();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0]["name"], "off-CPU: socket");
        assert_eq!(spans[0]["args"]["syscall"], "recvfrom");
        assert_eq!(spans[0]["args"]["asleep"], "300 ms");
        assert_eq!(spans[0]["dur"], 300_400.0);
        // Asleep uninterruptibly: disk, whatever the syscall.
        assert_eq!(spans[1]["name"], "off-CPU: disk");
        assert_eq!(spans[1]["tid"], WORKER_TID);
    }

    #[test]
    fn loop_threads_come_first_and_are_named() {
        let (json, _) = timeline();
        let meta = events(&json, "M");
        let find = |name: &str, tid: u32| {
            meta.iter()
                .find(|e| e["name"] == name && e["tid"] == tid)
                .map(|e| e["args"].clone())
                .unwrap()
        };
        assert_eq!(
            find("thread_name", LOOP_TID)["name"],
            "python3 (event loop)"
        );
        assert_eq!(find("thread_name", WORKER_TID)["name"], "worker");
        assert_eq!(find("thread_sort_index", LOOP_TID)["sort_index"], 0);
        assert_eq!(find("thread_sort_index", WORKER_TID)["sort_index"], 1);
        assert_eq!(find("process_name", LOOP_TID)["name"], "python3");
        assert_eq!(find("process_sort_index", LOOP_TID)["sort_index"], 0);
        assert_eq!(find("process_name", CHILD_PID)["name"], "sleep");
        assert_eq!(find("process_sort_index", CHILD_PID)["sort_index"], 1);
        assert_eq!(find("thread_sort_index", CHILD_PID)["sort_index"], 2);
    }

    #[test]
    fn loop_activity_is_counters() {
        let (json, _) = timeline();
        let busy: Vec<(f64, f64)> = events(&json, "C")
            .iter()
            .filter(|e| e["name"] == format!("loop {LOOP_TID} busy"))
            .map(|e| (e["ts"].as_f64().unwrap(), e["args"]["%"].as_f64().unwrap()))
            .collect();
        // 20 ms busy in the first 100 ms; quiet; the 301 ms iteration that
        // ended at 800 ms spread back over its 301 ms; quiet; the last
        // window's 229 ms likewise.
        assert_eq!(
            busy,
            vec![
                (0.0, 20.0),
                (100_000.0, 0.0),
                (498_765.433, 100.0),
                (800_000.0, 0.0),
                (1_071_234.567, 100.0),
                (1_300_000.0, 0.0),
            ]
        );
        let rate: Vec<f64> = events(&json, "C")
            .iter()
            .filter(|e| e["name"] == format!("loop {LOOP_TID} iterations"))
            .map(|e| e["args"]["per s"].as_f64().unwrap())
            .collect();
        assert_eq!(rate, vec![600.0, 0.0, 3.3, 0.0, 257.9, 0.0]);
    }

    #[test]
    fn empty_trace() {
        let trace = Trace::empty(sample::trace().target);
        let json: Value = serde_json::from_str(&render(&trace, &analyze(&trace))).unwrap();
        assert_eq!(json["traceEvents"].as_array().unwrap().len(), 0);
    }
}
