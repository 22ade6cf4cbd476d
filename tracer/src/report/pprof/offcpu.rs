//! The off-CPU profile as pprof: the rows of offcpu.folded (streamed sleeps
//! by thread, stack and reason; shorter ones summed by syscall; each event
//! loop's idle wait), in nanoseconds rather than the folded file's
//! milliseconds. As in the folded file the wait reason is the root frame, so
//! a flame graph splits by reason first; it is also the `wait_reason` label.

use super::{
    builder::{Builder, Meta},
    labels::Threads,
    proto::Profile,
};
use crate::{report::model::OffCpuRow, trace::Trace};

pub fn profile(trace: &Trace, rows: &[OffCpuRow]) -> Profile {
    let threads = Threads::new(trace);
    let mut builder = Builder::new(&[("waits", "count"), ("offcpu", "nanoseconds")]);
    for row in rows.iter().filter(|row| row.total_ns > 0) {
        let mut stack: Vec<u64> = row.stack.iter().map(|f| builder.frame(f)).collect();
        // Rows without a stack get the same stand-in frames as in the
        // folded file: the syscall, or for a loop's idle time the thread.
        if stack.is_empty() {
            if let Some(syscall) = &row.syscall {
                stack.push(builder.pseudo_frame(&format!("[{syscall}]")));
            } else if let Some(tid) = row.tid {
                stack.push(builder.pseudo_frame(&format!("[thread {tid}]")));
            }
        }
        stack.push(builder.pseudo_frame(row.reason.name()));
        let thread = row.tid.map(|tid| threads.label(tid));
        let mut labels = vec![("wait_reason", row.reason.name())];
        // Short waits are summed over all threads: no thread to name.
        if let (Some(tid), Some(thread)) = (row.tid, &thread) {
            labels.push(("thread", thread.as_str()));
            labels.push(("loop", threads.loop_label(tid)));
        }
        if let Some(syscall) = &row.syscall {
            labels.push(("syscall", syscall.as_str()));
        }
        if let Some(task) = &row.task {
            labels.push(("task", task.name.as_str()));
        }
        let count = i64::try_from(row.count).unwrap_or(i64::MAX);
        let ns = i64::try_from(row.total_ns).unwrap_or(i64::MAX);
        builder.add(stack, &labels, &[count, ns]);
    }
    let comments = vec![
        super::about(trace),
        format!(
            "waits shorter than {} us are summed by syscall, without a stack or thread",
            trace.offcpu_min_ns / 1_000
        ),
    ];
    builder.finish(Meta {
        time_nanos: super::start_nanos(trace),
        duration_nanos: i64::try_from(trace.duration_ns).unwrap_or(i64::MAX),
        period: Some((("offcpu", "nanoseconds"), 1)),
        comments,
    })
}
