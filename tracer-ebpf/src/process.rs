//! Thread and process lifecycle: free a thread's state when it exits and tell
//! userspace (which keeps its name for the report).

use aya_ebpf::{
    helpers::bpf_get_current_comm, macros::raw_tracepoint, programs::RawTracePointContext,
};
use tracer_common::{EventHeader, TaskExit, counter, kind};

use crate::{
    counters::bump,
    helpers::{cpu_id, now_ns},
    maps::{EVENTS, THREADS},
    python,
    target::current_traced,
};

/// Raw tracepoints need no tracefs; the exiting task is the current one.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    try_sched_process_exit();
    0
}

fn try_sched_process_exit() {
    let Some((tgid, tid)) = current_traced() else {
        return;
    };
    let _ = THREADS.remove(tid);
    python::forget_thread(tid);
    let Some(mut entry) = EVENTS.reserve::<TaskExit>(0) else {
        bump(counter::DROP_RINGBUF_FULL);
        return;
    };
    entry.write(TaskExit {
        header: EventHeader {
            kind: kind::TASK_EXIT,
            cpu: cpu_id(),
            pid: tgid,
            tid,
            ts_ns: now_ns(),
        },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    });
    entry.submit(0);
    bump(counter::EVENTS_SENT);
}
