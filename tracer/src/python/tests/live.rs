//! Every supported interpreter on the machine, run with `target.py`.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_common::{PY_FRAME_ENTRY, PyFrame};
use tracer_tests::{READY_TIMEOUT, Target, pyenv_python};

use super::walk::walk_thread;
use crate::{
    procfs::status::{proc_path, read_stat},
    python::{CodeReader, PyFrameInfo, PythonProcess, detect, text::read_str},
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/python/tests/target.py");

/// What `target.py` printed about itself.
struct Facts(Value);

impl Facts {
    fn u64(&self, pointer: &str) -> u64 {
        self.0
            .pointer(pointer)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {pointer} in {}", self.0))
    }
    fn str(&self, pointer: &str) -> &str {
        self.0
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {pointer} in {}", self.0))
    }
    fn array(&self, pointer: &str) -> &[Value] {
        self.0
            .pointer(pointer)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("no {pointer} in {}", self.0))
    }
}

/// Starts `target.py` and waits until its main thread sleeps in leaf.
fn start_target(python: &Path) -> (Target, Facts) {
    let mut target = Target::start(Command::new(python).arg(SCRIPT));
    let line = target.stdout.wait_for("{", READY_TIMEOUT);
    let facts = Facts(serde_json::from_str(&line).expect("target prints JSON"));
    let deadline = Instant::now() + READY_TIMEOUT;
    while read_stat(&proc_path(target.pid, "stat"))
        .ok()
        .map(|s| s.state)
        != Some('S')
    {
        assert!(
            Instant::now() < deadline,
            "pid {} never went to sleep",
            target.pid
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    (target, facts)
}

fn check_interpreter(python: &Path, minor: u32, image_suffix: &str) {
    let (target, facts) = start_target(python);
    let process = detect(target.pid)
        .expect("detect succeeds")
        .unwrap_or_else(|| panic!("{} is detected as CPython", python.display()));
    assert_eq!(process.minor(), minor);
    assert!(
        process.image_path.ends_with(image_suffix),
        "{}",
        process.image_path
    );
    assert_eq!(process.runtime, facts.u64("/runtime"), "_PyRuntime");
    assert_eq!(process.code_type, facts.u64("/code_type"), "PyCode_Type");
    assert_eq!(process.kernel_info().runtime, process.runtime);

    let mut code = CodeReader::default();
    check_code_object(&process, &facts, &mut code);
    check_strings(&process, &facts);
    check_frame_chain(&process, &facts, &mut code);
}

/// A frame that has not started yet is at the code's first line.
fn check_code_object(process: &PythonProcess, facts: &Facts, code: &mut CodeReader) {
    let leaf = PyFrame {
        code: facts.u64("/leaf/code"),
        lasti: -1,
        flags: 0,
    };
    let expected = PyFrameInfo {
        function: facts.str("/leaf/name").to_string(),
        file: SCRIPT.to_string(),
        line: u32::try_from(facts.u64("/leaf/first_line")).ok(),
    };
    assert_eq!(facts.str("/leaf/file"), SCRIPT);
    let leaf_name = if process.minor() >= 11 {
        "Worker.leaf"
    } else {
        "leaf"
    };
    assert_eq!(expected.function, leaf_name);
    assert_eq!(code.frame(process, &leaf), Some(expected));
    // Not a code object: the type object of code objects itself.
    let not_code = PyFrame {
        code: process.code_type,
        ..leaf
    };
    assert_eq!(code.frame(process, &not_code), None);
}

fn check_strings(process: &PythonProcess, facts: &Facts) {
    let texts = facts.array("/texts");
    assert_eq!(texts.len(), if process.minor() <= 11 { 5 } else { 4 });
    for text in texts {
        let (Some(address), Some(expected)) = (text[0].as_u64(), text[1].as_str()) else {
            panic!("bad text entry {text}");
        };
        let read = read_str(&process.memory, &process.layout.text, address);
        assert_eq!(read.as_deref(), Some(expected));
    }
}

/// The main thread, blocked in `time.sleep`, walked as the kernel will walk
/// it, resolves to the chain the interpreter itself printed.
fn check_frame_chain(process: &PythonProcess, facts: &Facts, code: &mut CodeReader) {
    let tid = u32::try_from(facts.u64("/tid")).expect("tid fits u32");
    let thread = walk_thread(process, tid, facts.u64("/thread_id")).expect("main thread found");
    assert_eq!(thread.interpreters, 1);
    assert_eq!(
        thread.thread_id,
        facts.u64("/thread_id"),
        "tstate->thread_id"
    );
    let walked: Vec<(String, Option<u32>)> = thread
        .frames
        .iter()
        .map(|frame| {
            let info = code
                .frame(process, frame)
                .unwrap_or_else(|| panic!("{frame:?} is not a code object"));
            assert_eq!(info.file, SCRIPT);
            (info.function, info.line)
        })
        .collect();
    let printed: Vec<(String, Option<u32>)> = facts
        .array("/chain")
        .iter()
        .map(|entry| {
            let name = entry[0].as_str().expect("name").to_string();
            (name, entry[1].as_u64().and_then(|l| u32::try_from(l).ok()))
        })
        .collect();
    let names: Vec<&str> = printed.iter().map(|(name, _)| name.as_str()).collect();
    let leaf = facts.str("/leaf/name");
    assert_eq!(names, [leaf, "middle", "outer", "<module>"]);
    assert_eq!(walked, printed);
    if process.minor() == 11 {
        // Python-to-Python calls stay in one C eval loop since 3.11: only
        // the module's frame was entered from C.
        let entries: Vec<bool> = thread
            .frames
            .iter()
            .map(|f| f.flags & PY_FRAME_ENTRY != 0)
            .collect();
        assert_eq!(entries, [false, false, false, true]);
    }
}

macro_rules! pyenv_interpreter_test {
    ($test:ident, $version:literal, $minor:literal) => {
        #[test]
        fn $test() {
            check_interpreter(
                &pyenv_python($version),
                $minor,
                concat!("/libpython", $version, ".so.1.0"),
            );
        }
    };
}

pyenv_interpreter_test!(pyenv_python_3_8, "3.8", 8);
pyenv_interpreter_test!(pyenv_python_3_9, "3.9", 9);
pyenv_interpreter_test!(pyenv_python_3_10, "3.10", 10);
pyenv_interpreter_test!(pyenv_python_3_11, "3.11", 11);
pyenv_interpreter_test!(pyenv_python_3_12, "3.12", 12);
pyenv_interpreter_test!(pyenv_python_3_13, "3.13", 13);

/// Debian's python3.11: libpython linked in statically, non-PIE, stripped.
#[test]
fn debian_static_python_3_11() {
    const DEBIAN: &str = "/usr/bin/python3.11";
    if !Path::new(DEBIAN).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{DEBIAN} is missing, and under CI=true a skip is a failure"
        );
        eprintln!("skipped: {DEBIAN} is not installed");
        return;
    }
    check_interpreter(Path::new(DEBIAN), 11, DEBIAN);
}

/// 3.7 has a `_PyRuntime` too, but is not supported: not an error.
#[test]
fn pyenv_python_3_7_is_not_read() {
    let script = "import os, sys; print('ready', os.getpid(), flush=True); sys.stdin.read()";
    let target = Target::start(Command::new(pyenv_python("3.7")).args(["-c", script]));
    assert!(matches!(detect(target.pid), Ok(None)));
}
