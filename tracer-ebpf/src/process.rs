//! Thread and process lifecycle: free a thread's state when it exits and tell
//! userspace (which keeps its name for the report); follow child processes,
//! and with `--cgroup` the processes that start a program in the cgroup.

use aya_ebpf::{
    helpers::bpf_get_current_comm, macros::raw_tracepoint, programs::RawTracePointContext,
};
use tracer_common::{EventHeader, ProcessFork, TaskExit, counter, kind};

use crate::{
    counters::bump,
    helpers::now_ns,
    kernel,
    maps::{TRACED, free_thread_state, header, send},
    python,
    target::{
        current_traced, follow_children, in_traced_cgroup, in_traced_map, stopped, trace_cgroups,
    },
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
    let (oncpu_ns, runqueue_ns) = free_thread_state(tid, |s| {
        // It is running now: add the stint since it last went on CPU, by
        // the clock if that switch was seen, else by the scheduler's count
        // (as of its last tick).
        let stint = if s.offcpu_since_ns == 0 && s.oncpu_since_ns != 0 {
            now_ns().saturating_sub(s.oncpu_since_ns)
        } else {
            s.unaccounted_oncpu_ns(kernel::runtime_ns(kernel::current_task()))
        };
        (s.oncpu_total_ns + stint, s.runqueue_total_ns)
    })
    .unwrap_or((0, 0));
    python::forget_thread(tid);
    // The process is gone when its leader exits: untrace its pid, which
    // the kernel will hand out again.
    if tid == tgid {
        let _ = TRACED.remove(tgid);
        python::forget_process(tgid);
    }
    send(TaskExit {
        header: header(kind::TASK_EXIT, tgid, tid, now_ns()),
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        oncpu_ns,
        runqueue_ns,
    });
}

/// `sched_process_fork(task_struct *parent, task_struct *child)`: runs for
/// new threads and new processes alike; a new process is one whose thread
/// id is its process id.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    if follow_children() {
        let child: *const u8 = ctx.arg(1);
        try_follow_child(child);
    }
    0
}

fn try_follow_child(child: *const u8) {
    let Some((tgid, tid)) = current_traced() else {
        return;
    };
    // `pid` and `tgid` are neighbours in task_struct.
    let Some([child_tid, child_tgid]) =
        kernel::read::<[u32; 2]>(child as u64, kernel::offset!(task_pid))
    else {
        return;
    };
    if child_tid != child_tgid {
        return;
    }
    if TRACED.insert(child_tgid, 1, 0).is_err() {
        bump(counter::DROP_PROCESS_MAP_FULL);
        return;
    }
    send(ProcessFork {
        header: header(kind::PROCESS_FORK, tgid, tid, now_ns()),
        child: child_tgid,
        _pad: 0,
    });
}

/// `sched_process_exec`: a process started a program. Attached with
/// `--cgroup` only: one started inside the traced cgroups joins the trace
/// (a service started by systemd or a container runtime enters its cgroup
/// between fork and exec, so following forks alone would miss it).
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(_ctx: RawTracePointContext) -> i32 {
    if trace_cgroups() {
        try_join_from_cgroup();
    }
    0
}

fn try_join_from_cgroup() {
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if stopped() || in_traced_map(tgid) || !in_traced_cgroup() {
        return;
    }
    if TRACED.insert(tgid, 1, 0).is_err() {
        bump(counter::DROP_PROCESS_MAP_FULL);
        return;
    }
    send::<EventHeader>(header(kind::PROCESS_JOINED, tgid, tid, now_ns()));
}
