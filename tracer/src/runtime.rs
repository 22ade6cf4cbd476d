//! Which language runtime a traced process runs, as far as the tracer cares:
//! CPython (its frames can be read), Node.js, or native code.

use tracer_common::traced;

use crate::{
    procfs::{maps::read_maps, status::proc_path},
    python::{self, PythonProcess},
};

pub enum Runtime {
    Python(Box<PythonProcess>),
    Node,
    Native,
}

impl Runtime {
    pub fn detect(pid: u32) -> Self {
        match python::detect(pid) {
            Ok(Some(python)) => return Runtime::Python(Box::new(python)),
            Ok(None) => {}
            Err(error) => log::warn!("pid {pid}: no Python frames: {error}"),
        }
        if is_node(pid) {
            Runtime::Node
        } else {
            Runtime::Native
        }
    }

    /// The `TRACED` flags for this runtime. A loop thread's usual futex wait
    /// counts as idle only in native runtimes (tokio parks idle workers on
    /// a futex); CPython's are GIL waits and V8's GC waits: real blocking.
    pub fn traced_flags(&self) -> u32 {
        match self {
            Runtime::Native => traced::FUTEX_IDLE,
            Runtime::Python(_) | Runtime::Node => 0,
        }
    }
}

fn is_node(pid: u32) -> bool {
    let exe_is_node = std::fs::read_link(proc_path(pid, "exe"))
        .ok()
        .and_then(|exe| {
            exe.file_name()
                .map(|n| n.to_string_lossy().starts_with("node"))
        })
        .unwrap_or(false);
    exe_is_node
        || read_maps(pid).is_ok_and(|maps| {
            maps.iter()
                .any(|m| m.path.as_deref().is_some_and(|p| p.contains("libnode.so")))
        })
}
