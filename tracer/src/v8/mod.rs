//! JavaScript frames of Node.js (V8), by name, script, line and column,
//! with no flag in the target: the native unwinder walks V8's frames by
//! their frame pointers, and each frame that runs JavaScript (its pc in V8's JIT
//! code or in the interpreter's builtins) is named from the heap objects its
//! slots point to, at the position its code runs.
//!
//! Read in userspace, not in the kernel: the event carries the stack as it
//! was (the frame slots), and the heap objects are read from the live
//! process when the event is unwound, tens of milliseconds later. Each
//! object's type is checked through its map. A function the scavenger has
//! moved since is followed to where it went (its old copy's map word says
//! where, until that space is reused at the next scavenge); one gone
//! further reads as no frame (the native frame stays).
//! The kernel side stays as it is (no 512-byte stack budget spent on V8).

mod baseline;
mod code;
mod code_layout;
mod compiled;
mod constants;
mod frames;
mod functions;
mod heap;
mod positions;

use std::{collections::HashMap, ops::Range, sync::Arc, time::Duration};

use baseline::BytecodeSizes;
use code_layout::Version;
use constants::{Layout, read_layout};
pub use frames::{StackCopy, Tier};
use functions::ScriptInfo;
use heap::Heap;

use crate::{
    procfs::memory::ProcessMemory,
    trace::{Frame, FrameKind},
    unwind::ModuleFile,
};

/// The V8 of one process: its layout, its builtins, its memory.
pub struct JsRuntime {
    file: Arc<ModuleFile>,
    /// The interpreter and other builtins (ELF virtual addresses).
    builtins: Option<Range<u64>>,
    layout: Layout,
    memory: ProcessMemory,
    /// Scripts read, by (script, name, source) object addresses.
    scripts: HashMap<(u64, u64, u64), Arc<ScriptInfo>>,
    /// Functions named, by JSFunction address, with the SharedFunctionInfo
    /// they had then.
    functions: HashMap<u64, Arc<KnownFunction>>,
    /// Compiled code read, by Code object address.
    codes: HashMap<u64, compiled::KnownCode>,
    /// The map word of the header before instructions, once read.
    header_map: Option<u64>,
    /// Code found from a pc (not its function's current code), by pc.
    scanned: HashMap<u64, Option<u64>>,
    /// V8's bytecode sizes, to walk the bytecode of baseline code.
    bytecode_sizes: Option<BytecodeSizes>,
    /// What naming JavaScript frames has cost (shown with -v at the end).
    pub cost: WalkCost,
}

/// Functions remembered at most (the cache starts over beyond).
const MAX_FUNCTIONS: usize = 1 << 16;
/// Code objects remembered at most (the cache starts over beyond).
const MAX_CODES: usize = 1 << 12;

/// V8's builtins (the interpreter among them).
const BUILTINS: &str = "Builtins_";
/// V8's table of bytecode sizes.
const BYTECODE_SIZES: &str = "_ZN2v88internal11interpreter9Bytecodes14kBytecodeSizesE";

/// A function named from the heap.
struct KnownFunction {
    shared: u64,
    name: String,
    start: Option<u32>,
    script: Option<Arc<ScriptInfo>>,
}

/// The time spent naming the JavaScript frames of unwound stacks.
#[derive(Debug, Default)]
pub struct WalkCost {
    stacks: u64,
    total: Duration,
}

impl WalkCost {
    /// One stack's frames looked at, in `spent`.
    pub fn add(&mut self, spent: Duration) {
        self.stacks += 1;
        self.total += spent;
    }
}

impl Drop for JsRuntime {
    fn drop(&mut self) {
        let WalkCost { stacks, total } = self.cost;
        if let Some(per_stack) = total.as_nanos().checked_div(u128::from(stacks)) {
            log::info!(
                "{}: JavaScript frames named in {stacks} stacks, {per_stack} ns per stack",
                self.file.path
            );
        }
    }
}

/// Files that may hold V8: node itself, or libnode.
fn may_hold_v8(file: &ModuleFile) -> bool {
    let name = file.name();
    name.starts_with("node") || name.starts_with("libnode")
}

impl JsRuntime {
    /// The runtime of `pid` if `file`, mapped there with `bias`, is a V8
    /// that exports its layout.
    pub fn detect(pid: u32, file: &Arc<ModuleFile>, bias: u64) -> Option<Self> {
        if !may_hold_v8(file) {
            return None;
        }
        let memory = ProcessMemory::open(pid).ok()?;
        let symbols = file.symbols_with_prefixes(&[
            constants::PREFIX,
            Version::PREFIX,
            BUILTINS,
            BYTECODE_SIZES,
        ]);
        let layout = read_layout(file, &symbols, bias, &memory)?;
        let builtins = symbols
            .iter()
            .filter(|(name, _)| name.starts_with(BUILTINS))
            .map(|(_, range)| range.clone())
            .reduce(|a, b| a.start.min(b.start)..a.end.max(b.end));
        if builtins.is_none() {
            log::info!(
                "{}: no Builtins_ symbols, interpreted JavaScript frames stay native",
                file.path
            );
        }
        let bytecode_sizes = symbols
            .iter()
            .filter(|(name, _)| name == BYTECODE_SIZES)
            .find_map(|(_, range)| {
                let size = usize::try_from(range.end - range.start).ok()?;
                BytecodeSizes::new(memory.read_vec(range.start.wrapping_add(bias), size)?)
            });
        if layout.code.is_none() || bytecode_sizes.is_none() {
            log::info!(
                "{}: V8's code layout or bytecode sizes unknown, compiled JavaScript frames \
                 give their function's first line",
                file.path
            );
        }
        log::info!("pid {pid}: V8 in {}", file.path);
        Some(Self {
            file: file.clone(),
            builtins,
            layout,
            memory,
            scripts: HashMap::new(),
            functions: HashMap::new(),
            codes: HashMap::new(),
            header_map: None,
            scanned: HashMap::new(),
            bytecode_sizes,
            cost: WalkCost::default(),
        })
    }

    /// A function's name, start and script, from its SharedFunctionInfo,
    /// read from the heap with every object's type checked.
    fn read_shared(&mut self, shared: u64) -> Option<KnownFunction> {
        let heap = Heap {
            memory: &self.memory,
            layout: &self.layout,
        };
        let info = heap.function_info(shared)?;
        let script = heap.script_of(shared).and_then(|script| {
            let key = heap.script_key(script)?;
            if let Some(info) = self.scripts.get(&key) {
                return Some(info.clone());
            }
            let info = Arc::new(heap.script_info(script)?);
            self.scripts.insert(key, info.clone());
            Some(info)
        });
        Some(KnownFunction {
            shared,
            name: info.name,
            start: info.start,
            script,
        })
    }

    /// Whether code at `svma` in `file` is V8's builtins (the interpreter).
    pub fn is_builtin(&self, file: &Arc<ModuleFile>, svma: u64) -> bool {
        Arc::ptr_eq(file, &self.file) && self.builtins.as_ref().is_some_and(|b| b.contains(&svma))
    }

    /// The JavaScript frames of the frame whose frame pointer is `fp`, if
    /// it is one: its function's, and those of the functions inlined into
    /// its code at its pc, innermost first.
    pub fn frames(&mut self, stack: &StackCopy, fp: u64, tier: Tier) -> Option<Vec<Frame>> {
        let heap = Heap {
            memory: &self.memory,
            layout: &self.layout,
        };
        let function_ptr = frames::frame_function(&heap, stack, fp)?;
        let function = match self.functions.get(&function_ptr) {
            // Still the same function there: its SharedFunctionInfo field
            // unchanged (one read instead of a dozen).
            Some(known)
                if heap.field(function_ptr - 1, self.layout.function_shared)
                    == Some(known.shared) =>
            {
                known.clone()
            }
            _ => {
                let shared = heap.shared_of(function_ptr)?;
                let known = Arc::new(self.read_shared(shared)?);
                if self.functions.len() >= MAX_FUNCTIONS {
                    self.functions.clear();
                }
                self.functions.insert(function_ptr, known.clone());
                known
            }
        };
        let located = match tier {
            Tier::Interpreted => {
                let heap = Heap {
                    memory: &self.memory,
                    layout: &self.layout,
                };
                let offset = frames::frame_bytecode(&heap, stack, fp).and_then(|bytecode| {
                    heap.bytecode_script_offset(
                        bytecode,
                        frames::interpreted_offset(&heap, stack, fp)?,
                    )
                });
                vec![(function, offset)]
            }
            Tier::Compiled { pc } => self
                .compiled(stack, fp, function_ptr, pc, &function)
                .unwrap_or_else(|| vec![(function, None)]),
        };
        Some(
            located
                .iter()
                .map(|(f, offset)| js_frame(f, *offset))
                .collect(),
        )
    }
}

/// The frame of `function` at `offset` in its script (its line and
/// column), or at its first line if the offset is unknown.
fn js_frame(function: &KnownFunction, offset: Option<u32>) -> Frame {
    let script = function.script.as_ref();
    let ends = script.and_then(|s| s.line_ends.as_deref());
    let at = |offset: Option<u32>| positions::line_column(ends?, offset?);
    let (line, column) = match at(offset) {
        Some(position) => (Some(position.line), Some(position.column)),
        None => (at(function.start).map(|position| position.line), None),
    };
    let name = &function.name;
    Frame {
        function: if name.is_empty() {
            "(anonymous)".to_string()
        } else {
            name.clone()
        },
        file: script.and_then(|s| s.name.clone()),
        line,
        column,
        module: None,
        kind: FrameKind::Js,
    }
}
