//! Ring-buffer records (`tracer_common` structs as bytes) to typed events.
//! Records are read field by field at their `offset_of!` positions, so a
//! short or malformed record is an error, never undefined behaviour.

use std::mem::{offset_of, size_of};

use tracer_common::{
    CpuSample, EventHeader, FdInfo, ProcessFork, PyFrame, PyStack, PyTask, SAMPLE_STALL,
    SYSCALL_IN_ITERATION, SYSCALL_UNINTERRUPTIBLE, SleepEnd, SlowSyscall, StackCapture, Stall,
    TaskExit, UserRegs, kind,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is too short for event kind {kind}")]
    Short { kind: u32, len: usize },
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
}

/// A stack as the kernel captured it, ready for unwinding.
#[derive(Debug, Clone)]
pub struct CapturedStack {
    pub regs: UserRegs,
    pub kernel_stack_id: Option<u32>,
    /// Stack memory from `regs.sp` upwards.
    pub user: Vec<u8>,
    pub py_status: u32,
    pub py_frames: Vec<PyFrame>,
    /// The asyncio Task running, as the kernel found it (`task` 0: none).
    pub py_task: PyTask,
}

#[derive(Debug, Clone)]
pub struct SlowSyscallEvent {
    pub pid: u32,
    pub tid: u32,
    pub nr: u32,
    pub ret: i64,
    pub arg0: u64,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub blocked_ns: u64,
    /// A GIL wait's holder (`PyThreadState *`), 0 if none.
    pub gil_holder: u64,
    /// It slept uninterruptibly (D state) at some point.
    pub uninterruptible: bool,
    /// It was made inside an event-loop iteration.
    pub in_iteration: bool,
    pub fd: FdInfo,
    pub comm: String,
    pub stack: CapturedStack,
}

#[derive(Debug, Clone)]
pub struct SampleEvent {
    pub pid: u32,
    pub tid: u32,
    pub time_ns: u64,
    /// Taken because a loop iteration ran long (else: for the CPU profile).
    pub for_stall: bool,
    pub comm: String,
    pub stack: CapturedStack,
}

#[derive(Debug, Clone)]
pub enum RawEvent {
    SlowSyscall(Box<SlowSyscallEvent>),
    /// A futex wait beginning on a loop thread whose park is not known.
    WaitProbe(Box<SlowSyscallEvent>),
    TaskExit {
        pid: u32,
        tid: u32,
        comm: String,
        oncpu_ns: u64,
        runqueue_ns: u64,
    },
    Stall(Stall),
    Sample(Box<SampleEvent>),
    /// Process `parent` started process `child` (traced from now on).
    ProcessFork {
        parent: u32,
        child: u32,
    },
    /// Process `pid` started a program in the traced cgroup (traced from
    /// now on).
    ProcessJoined {
        pid: u32,
    },
    /// Lean mode: a loop thread went to sleep in a syscall, with its stack;
    /// its duration comes with the matching `SleepEnd`, if it was long.
    SleepBegin(Box<SlowSyscallEvent>),
    SleepEnd {
        tid: u32,
        start_ns: u64,
        asleep_ns: u64,
    },
}

/// Reads a `T` at `offset`; `T` must be plain old data (all bit patterns valid).
fn read<T: Copy>(bytes: &[u8], offset: usize) -> Option<T> {
    let end = offset.checked_add(size_of::<T>())?;
    let slice = bytes.get(offset..end)?;
    // SAFETY: the slice holds size_of::<T>() bytes; read_unaligned copes with
    // any alignment; callers only use integer-only #[repr(C)] types.
    Some(unsafe { std::ptr::read_unaligned(slice.as_ptr().cast::<T>()) })
}

fn comm(raw: [u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

pub fn decode(bytes: &[u8]) -> Result<RawEvent, DecodeError> {
    let header: EventHeader = read(bytes, 0).ok_or(DecodeError::Short {
        kind: 0,
        len: bytes.len(),
    })?;
    let short = DecodeError::Short {
        kind: header.kind,
        len: bytes.len(),
    };
    match header.kind {
        kind::SLOW_SYSCALL => decode_slow_syscall(bytes, &header)
            .map(RawEvent::SlowSyscall)
            .ok_or(short),
        kind::WAIT_PROBE => decode_slow_syscall(bytes, &header)
            .map(RawEvent::WaitProbe)
            .ok_or(short),
        kind::SLEEP_BEGIN => decode_slow_syscall(bytes, &header)
            .map(RawEvent::SleepBegin)
            .ok_or(short),
        kind::SLEEP_END => read::<SleepEnd>(bytes, 0)
            .map(|end| RawEvent::SleepEnd {
                tid: header.tid,
                start_ns: end.start_ns,
                asleep_ns: end.asleep_ns,
            })
            .ok_or(short),
        kind::TASK_EXIT => {
            let exit: TaskExit = read(bytes, 0).ok_or(short)?;
            Ok(RawEvent::TaskExit {
                pid: header.pid,
                tid: header.tid,
                comm: comm(exit.comm),
                oncpu_ns: exit.oncpu_ns,
                runqueue_ns: exit.runqueue_ns,
            })
        }
        kind::STALL => read::<Stall>(bytes, 0).map(RawEvent::Stall).ok_or(short),
        kind::PROCESS_FORK => read::<ProcessFork>(bytes, 0)
            .map(|fork| RawEvent::ProcessFork {
                parent: header.pid,
                child: fork.child,
            })
            .ok_or(short),
        kind::PROCESS_JOINED => Ok(RawEvent::ProcessJoined { pid: header.pid }),
        kind::CPU_SAMPLE => decode_sample(bytes, &header).ok_or(short),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

fn decode_sample(bytes: &[u8], header: &EventHeader) -> Option<RawEvent> {
    if bytes.len() < size_of::<CpuSample>() {
        return None;
    }
    let reason: u32 = read(bytes, offset_of!(CpuSample, reason))?;
    Some(RawEvent::Sample(Box::new(SampleEvent {
        pid: header.pid,
        tid: header.tid,
        time_ns: header.ts_ns,
        for_stall: reason == SAMPLE_STALL,
        comm: comm(read(bytes, offset_of!(CpuSample, comm))?),
        stack: decode_stack(bytes, offset_of!(CpuSample, stack))?,
    })))
}

fn decode_slow_syscall(bytes: &[u8], header: &EventHeader) -> Option<Box<SlowSyscallEvent>> {
    if bytes.len() < size_of::<SlowSyscall>() {
        return None;
    }
    let stack = decode_stack(bytes, offset_of!(SlowSyscall, stack))?;
    Some(Box::new(SlowSyscallEvent {
        pid: header.pid,
        tid: header.tid,
        nr: read(bytes, offset_of!(SlowSyscall, nr))?,
        ret: read(bytes, offset_of!(SlowSyscall, ret))?,
        arg0: read(bytes, offset_of!(SlowSyscall, arg0))?,
        start_ns: read(bytes, offset_of!(SlowSyscall, start_ns))?,
        duration_ns: read(bytes, offset_of!(SlowSyscall, duration_ns))?,
        blocked_ns: read(bytes, offset_of!(SlowSyscall, blocked_ns))?,
        gil_holder: read(bytes, offset_of!(SlowSyscall, gil_holder))?,
        uninterruptible: read::<u32>(bytes, offset_of!(SlowSyscall, flags))?
            & SYSCALL_UNINTERRUPTIBLE
            != 0,
        in_iteration: read::<u32>(bytes, offset_of!(SlowSyscall, flags))? & SYSCALL_IN_ITERATION
            != 0,
        fd: read(bytes, offset_of!(SlowSyscall, fd))?,
        comm: comm(read(bytes, offset_of!(SlowSyscall, comm))?),
        stack,
    }))
}

/// Decodes a [`StackCapture`] that starts at `base`.
pub fn decode_stack(bytes: &[u8], base: usize) -> Option<CapturedStack> {
    let regs: UserRegs = read(bytes, base + offset_of!(StackCapture, regs))?;
    let kernel_stack_id: i64 = read(bytes, base + offset_of!(StackCapture, kernel_stack_id))?;
    let user_len: u32 = read(bytes, base + offset_of!(StackCapture, user_len))?;
    let user_start = base + offset_of!(StackCapture, user);
    let user_len = (user_len as usize).min(tracer_common::STACK_COPY_BYTES);
    let user = bytes.get(user_start..user_start + user_len)?.to_vec();
    let py_base = base + offset_of!(StackCapture, py);
    let py_len: u32 = read(bytes, py_base + offset_of!(PyStack, len))?;
    let py_status: u32 = read(bytes, py_base + offset_of!(PyStack, status))?;
    let frames_base = py_base + offset_of!(PyStack, frames);
    let py_frames = (0..(py_len as usize).min(tracer_common::MAX_PY_FRAMES))
        .map(|i| read::<PyFrame>(bytes, frames_base + i * size_of::<PyFrame>()))
        .collect::<Option<Vec<_>>>()?;
    let py_task = read(bytes, py_base + offset_of!(PyStack, task))?;
    Some(CapturedStack {
        regs,
        kernel_stack_id: u32::try_from(kernel_stack_id).ok(),
        user,
        py_status,
        py_frames,
        py_task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T>(value: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain #[repr(C)] value.
        unsafe {
            std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()).to_vec()
        }
    }

    #[test]
    fn decodes_task_exit() {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"worker");
        let exit = TaskExit {
            header: EventHeader {
                kind: kind::TASK_EXIT,
                cpu: 1,
                pid: 10,
                tid: 11,
                ts_ns: 5,
            },
            comm,
            oncpu_ns: 7,
            runqueue_ns: 8,
        };
        match decode(&bytes_of(&exit)).unwrap() {
            RawEvent::TaskExit {
                pid,
                tid,
                comm,
                oncpu_ns,
                runqueue_ns,
            } => {
                assert_eq!((pid, tid, comm.as_str()), (10, 11, "worker"));
                assert_eq!((oncpu_ns, runqueue_ns), (7, 8));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn decodes_sleep_end() {
        let end = SleepEnd {
            header: EventHeader {
                kind: kind::SLEEP_END,
                cpu: 0,
                pid: 10,
                tid: 12,
                ts_ns: 900,
            },
            start_ns: 400,
            asleep_ns: 300,
        };
        match decode(&bytes_of(&end)).unwrap() {
            RawEvent::SleepEnd {
                tid,
                start_ns,
                asleep_ns,
            } => assert_eq!((tid, start_ns, asleep_ns), (12, 400, 300)),
            other => panic!("unexpected {other:?}"),
        }
        let short = &bytes_of(&end)[..size_of::<SleepEnd>() - 1];
        assert!(matches!(
            decode(short).unwrap_err(),
            DecodeError::Short {
                kind: kind::SLEEP_END,
                ..
            }
        ));
    }

    #[test]
    fn rejects_short_and_unknown() {
        assert_eq!(
            decode(&[1, 2, 3]).unwrap_err(),
            DecodeError::Short { kind: 0, len: 3 }
        );
        let mut header = bytes_of(&EventHeader {
            kind: 99,
            cpu: 0,
            pid: 1,
            tid: 1,
            ts_ns: 0,
        });
        assert_eq!(decode(&header).unwrap_err(), DecodeError::UnknownKind(99));
        header[0] = kind::SLOW_SYSCALL as u8;
        assert!(matches!(
            decode(&header).unwrap_err(),
            DecodeError::Short { kind: 1, .. }
        ));
    }

    #[test]
    fn decodes_slow_syscall() {
        let mut record = vec![0u8; size_of::<SlowSyscall>()];
        let put = |record: &mut Vec<u8>, offset: usize, value: &[u8]| {
            record[offset..offset + value.len()].copy_from_slice(value);
        };
        put(&mut record, 0, &kind::SLOW_SYSCALL.to_ne_bytes());
        put(&mut record, 8, &7u32.to_ne_bytes());
        put(&mut record, 12, &8u32.to_ne_bytes());
        put(
            &mut record,
            offset_of!(SlowSyscall, nr),
            &45u32.to_ne_bytes(),
        );
        put(
            &mut record,
            offset_of!(SlowSyscall, ret),
            &(-11i64).to_ne_bytes(),
        );
        put(
            &mut record,
            offset_of!(SlowSyscall, duration_ns),
            &123u64.to_ne_bytes(),
        );
        let stack = offset_of!(SlowSyscall, stack);
        put(
            &mut record,
            stack + offset_of!(StackCapture, user_len),
            &16u32.to_ne_bytes(),
        );
        put(
            &mut record,
            stack + offset_of!(StackCapture, kernel_stack_id),
            &(-1i64).to_ne_bytes(),
        );
        put(
            &mut record,
            stack + offset_of!(StackCapture, user),
            &[0xab; 16],
        );
        let RawEvent::SlowSyscall(e) = decode(&record).unwrap() else {
            panic!("wrong kind");
        };
        assert_eq!(
            (e.pid, e.tid, e.nr, e.ret, e.duration_ns),
            (7, 8, 45, -11, 123)
        );
        assert_eq!(e.stack.user, vec![0xab; 16]);
        assert_eq!(e.stack.kernel_stack_id, None);
        assert!(e.stack.py_frames.is_empty());
    }
}
