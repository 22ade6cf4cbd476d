//! The CPU profile: per-thread CPU time (from the scheduler and from the
//! sampler, which should agree), and the functions the samples land in.

use std::collections::{HashMap, HashSet};

use crate::{
    report::model::{CpuProfile, CpuThread, TopFunction},
    trace::{Frame, FrameKind, SampleRecord, Trace},
};

/// Functions listed in `top`.
const TOP_FUNCTIONS: usize = 20;

/// The samples taken for the profile (not the extra ones of long loop
/// iterations, which would over-weigh stalls).
pub fn profile_samples(trace: &Trace) -> impl Iterator<Item = &SampleRecord> {
    trace.samples.iter().filter(|s| !s.for_stall)
}

/// A frame as profiles show it: `function (file:line)` for Python and
/// JavaScript,
/// `function` for native code, `function_[k]` for the kernel (the suffix
/// flame graphs colour as kernel code).
pub fn frame_label(frame: &Frame) -> String {
    match frame.kind {
        FrameKind::Python | FrameKind::Js => match (&frame.file, frame.line) {
            (Some(file), Some(line)) => format!("{} ({file}:{line})", frame.function),
            (Some(file), None) => format!("{} ({file})", frame.function),
            _ => frame.function.clone(),
        },
        FrameKind::Kernel => format!("{}_[k]", frame.function),
        FrameKind::Native | FrameKind::Truncated => frame.function.clone(),
    }
}

/// A function without its line (for `top`: one line per function).
fn function_key(frame: &Frame) -> String {
    match (frame.kind, &frame.file) {
        (FrameKind::Python | FrameKind::Js, Some(file)) => format!("{} ({file})", frame.function),
        _ => frame_label(frame),
    }
}

pub fn profile(trace: &Trace) -> CpuProfile {
    let hz = trace.profile_hz;
    let ns_per_sample = 1_000_000_000u64.checked_div(hz).unwrap_or(0);
    let mut per_thread: HashMap<u32, u64> = HashMap::new();
    let mut self_counts: HashMap<String, u64> = HashMap::new();
    let mut total_counts: HashMap<String, u64> = HashMap::new();
    let mut samples = 0;
    for sample in profile_samples(trace) {
        samples += 1;
        *per_thread.entry(sample.tid).or_default() += 1;
        let stack = trace.stack(sample.stack);
        if let Some(leaf) = stack.first() {
            *self_counts.entry(function_key(leaf)).or_default() += 1;
        }
        let functions: HashSet<String> = stack.iter().map(function_key).collect();
        for function in functions {
            *total_counts.entry(function).or_default() += 1;
        }
    }
    let mut threads: Vec<CpuThread> = trace
        .threads
        .iter()
        .filter(|t| t.oncpu_ns.is_some() || per_thread.contains_key(&t.tid))
        .map(|t| {
            let count = per_thread.get(&t.tid).copied().unwrap_or(0);
            let cpu_ns = t.oncpu_ns.unwrap_or(0);
            CpuThread {
                pid: t.pid,
                tid: t.tid,
                comm: t.comm.clone(),
                cpu_ns,
                core_percent: percent(cpu_ns, trace.duration_ns),
                samples: count,
                sampled_cpu_ns: count * ns_per_sample,
            }
        })
        .collect();
    threads.sort_by(|a, b| b.cpu_ns.cmp(&a.cpu_ns).then(a.tid.cmp(&b.tid)));
    let mut top: Vec<TopFunction> = total_counts
        .into_iter()
        .map(|(function, total)| TopFunction {
            self_samples: self_counts.get(&function).copied().unwrap_or(0),
            total_samples: total,
            function,
        })
        .collect();
    top.sort_by(|a, b| {
        b.self_samples
            .cmp(&a.self_samples)
            .then(b.total_samples.cmp(&a.total_samples))
            .then(a.function.cmp(&b.function))
    });
    top.truncate(TOP_FUNCTIONS);
    CpuProfile {
        hz,
        samples,
        threads,
        top,
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{TargetInfo, ThreadInfo};

    fn frame(function: &str, kind: FrameKind) -> Frame {
        Frame {
            function: function.into(),
            file: (kind == FrameKind::Python).then(|| "app.py".to_string()),
            line: (kind == FrameKind::Python).then_some(3),
            column: None,
            module: None,
            kind,
        }
    }

    #[test]
    fn self_and_total_counts() {
        let sample = |stack| SampleRecord {
            pid: 1,
            tid: 1,
            time_ns: 0,
            for_stall: false,
            stack,
            task: None,
        };
        let trace = Trace {
            profile_hz: 100,
            duration_ns: 1_000_000_000,
            threads: vec![ThreadInfo {
                pid: 1,
                tid: 1,
                comm: "app".into(),
                oncpu_ns: Some(500_000_000),
                runqueue_ns: Some(0),
            }],
            stacks: vec![
                vec![
                    frame("hot", FrameKind::Python),
                    frame("main", FrameKind::Native),
                ],
                vec![
                    frame("memcpy_[k]", FrameKind::Kernel),
                    frame("main", FrameKind::Native),
                ],
            ],
            samples: vec![sample(0), sample(0), sample(0), sample(1)],
            ..Trace::empty(TargetInfo {
                pid: 1,
                comm: "app".into(),
                cmdline: vec![],
            })
        };
        let profile = profile(&trace);
        assert_eq!(profile.samples, 4);
        assert_eq!(profile.top[0].function, "hot (app.py)");
        assert_eq!(
            (profile.top[0].self_samples, profile.top[0].total_samples),
            (3, 3)
        );
        let main = profile.top.iter().find(|f| f.function == "main").unwrap();
        assert_eq!((main.self_samples, main.total_samples), (0, 4));
        let thread = &profile.threads[0];
        assert_eq!((thread.samples, thread.sampled_cpu_ns), (4, 40_000_000));
        assert_eq!(thread.core_percent, 50.0);
    }
}
