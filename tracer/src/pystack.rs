//! Python frames merged into native stacks where the interpreter stands, as
//! `py-spy --native` shows them: each native call of the C eval loop
//! (`_PyEval_EvalFrameDefault`) is replaced by the Python frames it was
//! running. The kernel marks the outermost Python frame of each eval call
//! (`PY_FRAME_ENTRY`), which is how the frames are split between the calls.

use std::{
    ops::Range,
    time::{Duration, Instant},
};

use tracer_common::{PY_FRAME_ENTRY, PY_FRAME_SHIM, PyFrame, PyProcess, PyTask};

use crate::{
    python::{self, CodeReader, PythonProcess},
    stacks::RawFrame,
    trace::{Frame, FrameKind, TaskInfo},
    unwind::{NativeAddr, ProcessModules},
};

/// The function of CPython's C eval loop.
const EVAL_FUNCTION: &str = "_PyEval_EvalFrameDefault";

/// A traced CPython process: how to read its frames, and where its eval
/// loop is in native stacks.
pub struct PythonTarget {
    pub process: PythonProcess,
    eval: Option<(String, Range<u64>)>,
    /// When the process was found, and when what finds the running task
    /// was last looked for.
    found: Instant,
    tasks_looked_for: Instant,
}

/// How often what finds the running task is looked for until asyncio is
/// imported: often while the process is young (a program started by the
/// tracer imports asyncio, then may block at once), then seldom (a Python
/// program that never imports it).
const TASKS_RECHECK_YOUNG: Duration = Duration::from_millis(20);
const TASKS_RECHECK: Duration = Duration::from_secs(1);
const YOUNG: Duration = Duration::from_secs(10);

impl PythonTarget {
    pub fn new(process: PythonProcess, modules: &ProcessModules) -> Self {
        let eval = modules
            .file_at_path(&process.image_path)
            .and_then(|file| file.symbol_range(EVAL_FUNCTION))
            .map(|range| (process.image_path.clone(), range));
        if eval.is_none() {
            log::info!(
                "{} has no {EVAL_FUNCTION} symbol: Python frames go above the native ones",
                process.image_path
            );
        }
        Self {
            process,
            eval,
            found: Instant::now(),
            tasks_looked_for: Instant::now(),
        }
    }

    /// If what finds the running task was not there before and is now (the
    /// process imported asyncio since), the probes' new `PY_PROCS` value.
    pub fn found_tasks(&mut self) -> Option<PyProcess> {
        let every = if self.found.elapsed() < YOUNG {
            TASKS_RECHECK_YOUNG
        } else {
            TASKS_RECHECK
        };
        if !self.process.lacks_tasks() || self.tasks_looked_for.elapsed() < every {
            return None;
        }
        self.tasks_looked_for = Instant::now();
        self.process.look_for_tasks();
        if self.process.lacks_tasks() {
            return None;
        }
        log::debug!(
            "pid {}: asyncio's running tasks found, {:?} after the process",
            self.process.pid,
            self.found.elapsed()
        );
        Some(self.process.kernel_info())
    }

    /// Names the task the kernel found at an event.
    pub fn task(&self, code: &mut CodeReader, raw: &PyTask) -> Option<TaskInfo> {
        python::task_info(&self.process, code, raw)
    }

    /// Whether a native frame is a call of the eval loop.
    pub fn is_eval(&self, addr: &NativeAddr) -> bool {
        match (addr, &self.eval) {
            (NativeAddr::Module { file, svma }, Some((path, range))) => {
                file.path == *path && range.contains(svma)
            }
            _ => false,
        }
    }

    /// Names the kernel's frames: (frame, ends an eval call).
    pub fn frames(&self, code: &mut CodeReader, raw: &[PyFrame]) -> Vec<(Frame, bool)> {
        without_shims(raw)
            .iter()
            .map(|py| {
                let frame = match code.frame(&self.process, py) {
                    Some(info) => Frame {
                        function: info.function,
                        file: Some(info.file),
                        line: info.line,
                        column: None,
                        module: None,
                        kind: FrameKind::Python,
                    },
                    None => Frame {
                        function: "[unreadable Python frame]".to_string(),
                        file: None,
                        line: None,
                        column: None,
                        module: None,
                        kind: FrameKind::Python,
                    },
                };
                (frame, py.flags & PY_FRAME_ENTRY != 0)
            })
            .collect()
    }
}

/// The frames without the shim frames, each shim marking the frame before
/// it as the first of an eval call.
fn without_shims(raw: &[PyFrame]) -> Vec<PyFrame> {
    let mut frames: Vec<PyFrame> = Vec::with_capacity(raw.len());
    for frame in raw {
        if frame.flags & PY_FRAME_SHIM == 0 {
            frames.push(*frame);
        } else if let Some(previous) = frames.last_mut() {
            previous.flags |= PY_FRAME_ENTRY;
        }
    }
    frames
}

/// Replaces each eval-loop frame of `native` (innermost first) with the
/// Python frames of that call. Python frames left over (native unwinding
/// stopped early, or no eval symbol) go after the native frames.
pub fn merge(native: Vec<(RawFrame, bool)>, python: Vec<(Frame, bool)>) -> Vec<RawFrame> {
    let mut groups: Vec<Vec<Frame>> = Vec::new();
    let mut current = Vec::new();
    for (frame, entry) in python {
        current.push(frame);
        if entry {
            groups.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    let mut groups = groups.into_iter();
    let mut merged = Vec::new();
    for (frame, is_eval) in native {
        match is_eval.then(|| groups.next()).flatten() {
            Some(group) => merged.extend(group.into_iter().map(RawFrame::Python)),
            None => merged.push(frame),
        }
    }
    merged.extend(groups.flatten().map(RawFrame::Python));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_frames_are_dropped_and_mark_the_frame_before_them() {
        let frame = |code, flags| PyFrame {
            code,
            lasti: 0,
            flags,
        };
        // A leaf, its caller entered from C (a shim after it), then the
        // outermost frame; a shim first has no frame to mark.
        let raw = [
            frame(0, PY_FRAME_SHIM),
            frame(1, 0),
            frame(2, 0),
            frame(0, PY_FRAME_SHIM),
            frame(3, PY_FRAME_ENTRY),
        ];
        let kept: Vec<(u64, u32)> = without_shims(&raw)
            .iter()
            .map(|f| (f.code, f.flags))
            .collect();
        assert_eq!(kept, [(1, 0), (2, PY_FRAME_ENTRY), (3, PY_FRAME_ENTRY)]);
    }

    fn py(name: &str) -> Frame {
        Frame {
            function: name.to_string(),
            file: Some("app.py".to_string()),
            line: Some(1),
            column: None,
            module: None,
            kind: FrameKind::Python,
        }
    }

    fn native(addr: u64) -> RawFrame {
        RawFrame::Unknown { addr, region: None }
    }

    fn names(frames: &[RawFrame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| match f {
                RawFrame::Python(frame) => frame.function.clone(),
                RawFrame::Unknown { addr, .. } => format!("{addr}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn each_eval_call_gets_its_frames() {
        // 3.11+: one eval call runs leaf and middle; an outer one runs main.
        let native_frames = vec![
            (native(1), false), // libc
            (native(2), false), // C function of the time module
            (native(3), true),  // eval: leaf, middle
            (native(4), false), // C function calling back into Python
            (native(5), true),  // eval: main
            (native(6), false), // Py_RunMain
        ];
        let python = vec![
            (py("leaf"), false),
            (py("middle"), true),
            (py("main"), true),
        ];
        assert_eq!(
            names(&merge(native_frames, python)),
            ["1", "2", "leaf", "middle", "4", "main", "6"]
        );
    }

    #[test]
    fn leftovers_go_outermost() {
        let native_frames = vec![(native(1), false), (native(2), true)];
        let python = vec![(py("a"), true), (py("b"), true), (py("c"), false)];
        assert_eq!(names(&merge(native_frames, python)), ["1", "a", "b", "c"]);
        // More eval frames than Python calls: the native frame stays.
        let native_frames = vec![(native(1), true), (native(2), true)];
        assert_eq!(
            names(&merge(native_frames, vec![(py("a"), true)])),
            ["a", "2"]
        );
    }
}
