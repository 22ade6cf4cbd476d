//! The CPU profile as pprof: the samples of cpu.folded (the profile's, not
//! the extra ones of long loop iterations), one count and its CPU time each,
//! labelled with their thread and whether it runs an event loop.

use std::collections::HashMap;

use super::{
    builder::{Builder, Meta},
    labels::Threads,
    proto::Profile,
};
use crate::{
    analyze::cpu::profile_samples,
    trace::{StackId, Trace},
};

pub fn profile(trace: &Trace) -> Profile {
    // Each sample stands for one sampling period of CPU time.
    let period = 1_000_000_000u64.checked_div(trace.profile_hz).unwrap_or(0);
    let period = i64::try_from(period).unwrap_or(i64::MAX);
    let threads = Threads::new(trace);
    let mut builder = Builder::new(&[("samples", "count"), ("cpu", "nanoseconds")]);
    let mut stacks: HashMap<StackId, Vec<u64>> = HashMap::new();
    for sample in profile_samples(trace) {
        let stack = match stacks.get(&sample.stack) {
            Some(stack) => stack.clone(),
            None => {
                let mut stack: Vec<u64> = trace
                    .stack(sample.stack)
                    .iter()
                    .map(|frame| builder.frame(frame))
                    .collect();
                if stack.is_empty() {
                    stack.push(builder.pseudo_frame("[no stack]"));
                }
                stacks.insert(sample.stack, stack.clone());
                stack
            }
        };
        let thread = threads.label(sample.tid);
        let mut labels = vec![
            ("thread", thread.as_str()),
            ("loop", threads.loop_label(sample.tid)),
        ];
        if let Some(task) = &sample.task {
            labels.push(("task", task.name.as_str()));
        }
        builder.add(stack, &labels, &[1, period]);
    }
    let mut comments = vec![super::about(trace)];
    if trace.profile_hz == 0 {
        comments.push("the CPU profile was off (--rate 0)".to_string());
    } else {
        comments.push(format!("sampled at {} Hz", trace.profile_hz));
    }
    builder.finish(Meta {
        time_nanos: super::start_nanos(trace),
        duration_nanos: i64::try_from(trace.duration_ns).unwrap_or(i64::MAX),
        period: Some((("cpu", "nanoseconds"), period)),
        comments,
    })
}
