//! From a frame the kernel read (code object address + position) to
//! `function (file:line)`, reading the code object from the target.

use std::collections::HashMap;

use tracer_common::PyFrame;

use super::{PythonProcess, lines::LineFormat, offsets::CodeLayout, text::read_str};
use crate::procfs::memory::{i32_at, u64_at};

/// `PyObject.ob_type`.
const OB_TYPE: u32 = 8;
/// `PyBytesObject`: `ob_size` and the inline bytes.
const BYTES_SIZE: u64 = 16;
const BYTES_DATA: u64 = 32;
/// Line tables of bigger functions are cut here (lines past it are unknown):
/// the bound keeps a corrupt size from making a huge read.
const MAX_LINE_TABLE: usize = 256 * 1024;

/// One Python frame, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFrameInfo {
    /// `co_qualname` (3.11+: `Class.method`, `f.<locals>.g`) or `co_name`.
    pub function: String,
    /// `co_filename`, as the interpreter has it (may be relative in 3.8).
    pub file: String,
    /// `None` when the instruction has no line (artificial code).
    pub line: Option<u32>,
}

/// Reads code objects of traced processes; one per tracer run, it caches
/// each code object it has read.
#[derive(Default)]
pub struct CodeReader {
    code: HashMap<(u32, u64), CodeObject>,
}

/// What identifies a code object besides its address, which is reused once
/// the object is freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    filename: u64,
    name: u64,
    first_line: i32,
}

struct CodeObject {
    identity: Identity,
    function: String,
    file: String,
    line_table: Vec<u8>,
}

impl CodeReader {
    /// Resolves `frame` of `python`. `None` if `frame.code` is not a code
    /// object (any more), or cannot be read. Once the process has exited,
    /// code objects read before are still resolved from the cache.
    pub fn frame(&mut self, python: &PythonProcess, frame: &PyFrame) -> Option<PyFrameInfo> {
        let key = (python.pid, frame.code);
        match look_at(python, frame.code) {
            Header::Code(identity) => {
                let cached = self.code.get(&key).map(|code| code.identity);
                if cached != Some(identity) {
                    let code = read_code_object(python, frame.code, identity)?;
                    self.code.insert(key, code);
                }
            }
            Header::NotCode => {
                self.code.remove(&key);
                return None;
            }
            Header::Unreadable => {}
        }
        let code = self.code.get(&key)?;
        let format = LineFormat::for_minor(python.minor());
        Some(PyFrameInfo {
            function: code.function.clone(),
            file: code.file.clone(),
            line: format.line(&code.line_table, code.identity.first_line, frame.lasti),
        })
    }
}

/// What is at a code object's address now.
enum Header {
    Code(Identity),
    NotCode,
    /// The process is gone, or the address is bad.
    Unreadable,
}

fn look_at(python: &PythonProcess, address: u64) -> Header {
    let layout = &python.layout.code;
    let fields = [layout.filename, layout.name, layout.first_line];
    let header_len = fields.into_iter().max().unwrap_or(0) as usize + 8;
    let Some(header) = python.memory.read_vec(address, header_len) else {
        return Header::Unreadable;
    };
    if u64_at(&header, OB_TYPE) != Some(python.code_type) {
        return Header::NotCode;
    }
    identity(&header, layout).map_or(Header::Unreadable, Header::Code)
}

fn identity(header: &[u8], layout: &CodeLayout) -> Option<Identity> {
    Some(Identity {
        filename: u64_at(header, layout.filename)?,
        name: u64_at(header, layout.name)?,
        first_line: i32_at(header, layout.first_line)?,
    })
}

fn read_code_object(
    python: &PythonProcess,
    address: u64,
    identity: Identity,
) -> Option<CodeObject> {
    let memory = &python.memory;
    let text = &python.layout.text;
    let table = memory.read_u64(address + u64::from(python.layout.code.line_table))?;
    let size = i64::from_le_bytes(memory.read_array(table + BYTES_SIZE)?);
    let size = usize::try_from(size).ok()?;
    Some(CodeObject {
        identity,
        function: read_str(memory, text, identity.name)?,
        file: read_str(memory, text, identity.filename)?,
        line_table: memory.read_vec(table + BYTES_DATA, size.min(MAX_LINE_TABLE))?,
    })
}
