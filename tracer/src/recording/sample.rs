//! A small trace with every field set, for tests of the recording format
//! and of the reports drawn from it. It is written out field by field (no
//! `..`), so that a change to `Trace` lands here: then bump
//! `FORMAT_VERSION` (see `decode.rs`).

use crate::trace::{
    BlockingCall, CallGroup, Drops, FdKind, Frame, FrameKind, LoopThread, LoopWindow, ProcessInfo,
    RunqueueLatency, SampleRecord, ShortOffCpu, StallRecord, SyscallSummary, SyscallTotals,
    TargetInfo, TaskInfo, ThreadInfo, Trace,
};

pub const LOOP_TID: u32 = 4242;
pub const WORKER_TID: u32 = 4250;
/// A child process the target started.
pub const CHILD_PID: u32 = 4300;

fn frame(function: &str, file: &str, line: u32, kind: FrameKind) -> Frame {
    Frame {
        function: function.into(),
        file: Some(file.into()),
        line: Some(line),
        column: None,
        module: (kind != FrameKind::Python).then(|| "libc.so.6".to_string()),
        kind,
    }
}

fn python_stack(innermost: Frame, function: &str, line: u32) -> Vec<Frame> {
    vec![
        innermost,
        frame(
            "_PyEval_EvalFrameDefault",
            "Python/ceval.c",
            4769,
            FrameKind::Native,
        ),
        frame(function, "/srv/app.py", line, FrameKind::Python),
        frame("handle", "/srv/app.py", 66, FrameKind::Python),
        frame("main", "/srv/app.py", 93, FrameKind::Python),
    ]
}

pub fn trace() -> Trace {
    let recv = frame("__libc_recv", "recv.c", 28, FrameKind::Native);
    let cpu = frame("long_mul", "Objects/longobject.c", 3900, FrameKind::Native);
    Trace {
        target: TargetInfo {
            pid: LOOP_TID,
            comm: "python3".into(),
            cmdline: vec!["python3".into(), "/srv/app.py".into()],
        },
        started_unix_ms: 1_700_000_000_000,
        duration_ns: 2_000_000_000,
        threshold_ns: 10_000_000,
        offcpu_min_ns: 1_000_000,
        lean: true,
        ended_by: "duration elapsed".into(),
        processes: vec![
            ProcessInfo {
                pid: LOOP_TID,
                parent: None,
                comm: "python3".into(),
                cmdline: vec!["python3".into(), "/srv/app.py".into()],
            },
            ProcessInfo {
                pid: CHILD_PID,
                parent: Some(LOOP_TID),
                comm: "sleep".into(),
                cmdline: vec!["sleep".into(), "0.2".into()],
            },
        ],
        threads: vec![
            ThreadInfo {
                pid: LOOP_TID,
                tid: LOOP_TID,
                comm: "python3".into(),
                oncpu_ns: Some(230_000_000),
                runqueue_ns: Some(2_500_000),
            },
            ThreadInfo {
                pid: LOOP_TID,
                tid: WORKER_TID,
                comm: "worker".into(),
                oncpu_ns: None,
                runqueue_ns: None,
            },
            ThreadInfo {
                pid: CHILD_PID,
                tid: CHILD_PID,
                comm: "sleep".into(),
                oncpu_ns: Some(1_000_000),
                runqueue_ns: Some(0),
            },
        ],
        syscalls: vec![SyscallTotals {
            nr: 45,
            count: 3,
            errors: 1,
            total_ns: 301_000_000,
            max_ns: 300_400_000,
            hist: vec![0, 2, 0, 1],
        }],
        blocking: vec![
            BlockingCall {
                pid: LOOP_TID,
                tid: LOOP_TID,
                nr: 45,
                start_ns: 500_100_000,
                duration_ns: 300_400_000,
                ret: 12,
                arg0: 7,
                fd: Some(7),
                target: Some("tcp:127.0.0.1:53412->127.0.0.1:8081".into()),
                fd_kind: FdKind::Socket,
                blocked_ns: 300_000_000,
                uninterruptible: false,
                stack: 0,
                task: Some(TaskInfo {
                    name: "fetch-user-42".into(),
                    coro: "handle_request".into(),
                    awaited_by: vec!["serve".into(), "main".into()],
                }),
                gil: None,
            },
            BlockingCall {
                pid: LOOP_TID,
                tid: WORKER_TID,
                nr: 230,
                start_ns: 900_000_000,
                duration_ns: 50_000_000,
                ret: 0,
                arg0: 0x7ffd_0000_1000,
                fd: None,
                target: None,
                fd_kind: FdKind::Unknown,
                blocked_ns: 49_900_000,
                uninterruptible: true,
                stack: 2,
                task: None,
                gil: None,
            },
        ],
        call_groups: vec![CallGroup {
            first: BlockingCall {
                pid: LOOP_TID,
                tid: WORKER_TID,
                nr: 0,
                start_ns: 1_500_000_000,
                duration_ns: 12_000_000,
                ret: 64,
                arg0: 9,
                fd: Some(9),
                target: Some("pipe".into()),
                fd_kind: FdKind::Pipe,
                blocked_ns: 11_900_000,
                uninterruptible: false,
                stack: 2,
                task: None,
                gil: None,
            },
            count: 40,
            blocking_count: 30,
            blocking_ns: 400_000_000,
            blocking_max_ns: 20_000_000,
            offcpu_count: 40,
            offcpu_ns: 450_000_000,
        }],
        loops: vec![LoopThread {
            pid: LOOP_TID,
            tid: LOOP_TID,
            iterations: 120,
            busy_ns: 550_000_000,
            idle_ns: 1_450_000_000,
            max_busy_ns: 301_234_567,
            hist: vec![100, 18, 2],
        }],
        loop_windows: vec![
            LoopWindow {
                tid: LOOP_TID,
                start_ns: 0,
                duration_ns: 100_000_000,
                iterations: 60,
                busy_ns: 20_000_000,
            },
            LoopWindow {
                tid: LOOP_TID,
                start_ns: 700_000_000,
                duration_ns: 100_000_000,
                iterations: 1,
                busy_ns: 301_234_567,
            },
            LoopWindow {
                tid: LOOP_TID,
                start_ns: 1_200_000_000,
                duration_ns: 100_000_000,
                iterations: 59,
                busy_ns: 228_765_433,
            },
        ],
        stalls: vec![
            StallRecord {
                pid: LOOP_TID,
                tid: LOOP_TID,
                start_ns: 500_000_000,
                duration_ns: 301_234_567,
                oncpu_ns: 1_000_000,
                runqueue_ns: 234_567,
                blocked_ns: 300_000_000,
                longest: Some(SyscallSummary {
                    nr: 45,
                    duration_ns: 300_400_000,
                    fd: Some(7),
                    target: Some("tcp:127.0.0.1:53412->127.0.0.1:8081".into()),
                }),
                nested_loop: false,
            },
            StallRecord {
                pid: LOOP_TID,
                tid: LOOP_TID,
                start_ns: 1_100_000_000,
                duration_ns: 200_000_000,
                oncpu_ns: 198_000_000,
                runqueue_ns: 2_000_000,
                blocked_ns: 0,
                longest: None,
                nested_loop: false,
            },
        ],
        samples: vec![
            SampleRecord {
                pid: LOOP_TID,
                tid: LOOP_TID,
                time_ns: 1_150_000_000,
                for_stall: false,
                stack: 1,
                task: None,
            },
            SampleRecord {
                pid: LOOP_TID,
                tid: LOOP_TID,
                time_ns: 1_250_000_000,
                for_stall: true,
                stack: 1,
                task: None,
            },
        ],
        profile_hz: 99,
        offcpu_short: vec![ShortOffCpu {
            nr: Some(7),
            count: 40,
            total_ns: 12_000_000,
        }],
        runqueue: RunqueueLatency {
            count: 500,
            total_ns: 2_500_000,
            max_ns: 400_000,
            hist: vec![300, 200],
        },
        stacks: vec![
            python_stack(recv, "query_upstream", 46),
            python_stack(cpu, "render_report", 53),
            vec![frame(
                "clock_nanosleep",
                "clock_nanosleep.c",
                48,
                FrameKind::Native,
            )],
        ],
        drops: Drops {
            ringbuf_full: 1,
            thread_map_full: 2,
            kernel_stacks: 3,
            process_map_full: 4,
        },
        kernel_limits: vec!["Linux 5.10 has no bpf_loop".into()],
        cgroup: None,
    }
}
