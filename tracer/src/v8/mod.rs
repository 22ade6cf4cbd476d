//! JavaScript frames of Node.js (V8), by name, script and line, with no
//! flag in the target: the native unwinder walks V8's frames by their frame
//! pointers, and each frame that runs JavaScript (its pc in V8's JIT code
//! or in the interpreter's builtins) is named from the heap objects its
//! slots point to.
//!
//! Read in userspace, not in the kernel: the event carries the stack as it
//! was (the frame slots), and the heap objects are read from the live
//! process when the event is unwound, tens of milliseconds later. Each
//! object's type is checked through its map, so one the GC has moved since
//! reads as no frame (the native frame stays), never as another function.
//! The kernel side stays as it is (no 512-byte stack budget spent on V8).

mod baseline;
mod code;
mod code_layout;
mod constants;
mod frames;
mod functions;
mod heap;
mod positions;

use std::{collections::HashMap, ops::Range, sync::Arc, time::Duration};

use baseline::BytecodeSizes;
use code::{CodeIdentity, CodeTables};
use code_layout::Version;
use constants::{Layout, read_layout};
pub use frames::{StackCopy, Tier};
use functions::ScriptInfo;
use heap::Heap;
use positions::SourcePosition;

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
    codes: HashMap<u64, KnownCode>,
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
/// Positions remembered per code object, at most.
const MAX_CODE_POSITIONS: usize = 1 << 10;

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

/// A Code object read from the heap: used while the fields that identify
/// it are unchanged (the GC moves and frees code).
struct KnownCode {
    identity: CodeIdentity,
    tables: CodeTables,
    /// The functions inlined into it (optimized code), by inlining id.
    inlined: Vec<Option<Arc<KnownFunction>>>,
    /// The frames found at each pc offset, innermost first.
    positions: HashMap<u64, Vec<Located>>,
}

/// A function and the script offset a frame runs it at (None: unknown,
/// the function's first line stands for it).
type Located = (Arc<KnownFunction>, Option<u32>);

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

    /// The frames of compiled code at `pc`, innermost first; None if no
    /// code of the function holds the pc, or its tables say nothing there.
    fn compiled(
        &mut self,
        stack: &StackCopy,
        fp: u64,
        function_ptr: u64,
        pc: u64,
        function: &Arc<KnownFunction>,
    ) -> Option<Vec<Located>> {
        let layout = self.layout.code.as_ref()?;
        let heap = Heap {
            memory: &self.memory,
            layout: &self.layout,
        };
        let own = heap.function_code(layout, function_ptr);
        let own = own.and_then(|address| Some((address, heap.code_identity(layout, address)?)));
        let (address, identity, scanned) = match own {
            Some((address, identity)) if identity.holds(pc) => (address, identity, false),
            _ => {
                if let Some(map) = own.and_then(|(address, _)| heap.header_map(layout, address)) {
                    self.header_map = Some(map);
                }
                let cached = self.scanned.get(&pc).copied();
                let (address, identity) = match cached {
                    Some(found) => found.and_then(|address| {
                        heap.typed(address + 1, |t| t == layout.code_type)?;
                        let identity = heap.code_identity(layout, address)?;
                        identity.holds(pc).then_some((address, identity))
                    })?,
                    None => {
                        let found = heap.code_containing(layout, self.header_map?, pc);
                        if self.scanned.len() >= MAX_CODES {
                            self.scanned.clear();
                        }
                        self.scanned.insert(pc, found.map(|(address, _)| address));
                        found?
                    }
                };
                (address, identity, true)
            }
        };
        let pc_offset = pc - identity.start;
        if self
            .codes
            .get(&address)
            .is_none_or(|known| known.identity != identity)
        {
            let tables = heap.code_tables(layout, address, identity)?;
            let inlined = match &tables {
                CodeTables::Optimized { inlinings, .. } => inlinings
                    .iter()
                    .map(|inlining| Some(Arc::new(self.read_shared(inlining.shared?)?)))
                    .collect(),
                CodeTables::Baseline { .. } => Vec::new(),
            };
            if self.codes.len() >= MAX_CODES {
                self.codes.clear();
            }
            let known = KnownCode {
                identity,
                tables,
                inlined,
                positions: HashMap::new(),
            };
            self.codes.insert(address, known);
        }
        let known = self.codes.get(&address)?;
        // Code found from the pc: used only if it is the frame's
        // function's (OSR code, baseline code the function has left for
        // optimized code while the frame still runs it).
        let heap = Heap {
            memory: &self.memory,
            layout: &self.layout,
        };
        let ours = match &known.tables {
            CodeTables::Optimized { shared, .. } => *shared == Some(function.shared),
            CodeTables::Baseline { bytecode, .. } => {
                bytecode.is_some() && *bytecode == frames::frame_bytecode(&heap, stack, fp)
            }
        };
        if scanned && !ours {
            return None;
        }
        if let Some(located) = known.positions.get(&pc_offset) {
            return Some(located.clone());
        }
        let located = match &known.tables {
            CodeTables::Baseline {
                bytecode_offsets, ..
            } => {
                let bytecode = frames::frame_bytecode(&heap, stack, fp)?;
                let offset = baseline::bytecode_offset(
                    bytecode_offsets,
                    &heap.bytecodes(bytecode)?,
                    self.bytecode_sizes.as_ref()?,
                    pc_offset,
                )?;
                vec![(
                    function.clone(),
                    heap.bytecode_script_offset(bytecode, offset),
                )]
            }
            CodeTables::Optimized { positions, .. } => {
                let raw = positions::position_at(positions, i64::try_from(pc_offset).ok()?)?;
                inlined_frames(known, function, SourcePosition::decode(raw))?
            }
        };
        let known = self.codes.get_mut(&address)?;
        if known.positions.len() < MAX_CODE_POSITIONS {
            known.positions.insert(pc_offset, located.clone());
        }
        Some(located)
    }
}

/// The frames at `position` in optimized code: the functions inlined
/// there, each at its position, then the code's own function at the
/// call that inlined the outermost. An inlined function whose
/// SharedFunctionInfo was not read is left out (its caller's position
/// is still right); None if the inlinings do not chain up.
fn inlined_frames(
    known: &KnownCode,
    function: &Arc<KnownFunction>,
    mut position: SourcePosition,
) -> Option<Vec<Located>> {
    let CodeTables::Optimized { inlinings, .. } = &known.tables else {
        return None;
    };
    let mut located = Vec::new();
    while let Some(id) = position.inlining {
        let inlining = inlinings.get(id)?;
        if let Some(inlined) = known.inlined.get(id).cloned().flatten() {
            located.push((inlined, position.script_offset));
        }
        let caller = SourcePosition::decode(inlining.call);
        // Callers were inlined before their callees: lower ids.
        if caller.inlining.is_some_and(|caller_id| caller_id >= id) {
            return None;
        }
        position = caller;
    }
    located.push((function.clone(), position.script_offset));
    Some(located)
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

#[cfg(test)]
mod tests {
    use super::*;
    use code::Inlining;

    /// The table and inlining Node 20's TurboFan wrote for `checkQuota`
    /// with `fetchQuota` inlined into it (positions.rs: an optimized
    /// table node wrote): the call `run(command)` at script offset 164 in
    /// fetchQuota, inlined at offset 232 (`fetchQuota(run, command)`).
    fn check_quota(call: i64) -> (KnownCode, Arc<KnownFunction>) {
        let function = |name: &str| {
            Arc::new(KnownFunction {
                shared: 0,
                name: name.to_string(),
                start: Some(100),
                script: None,
            })
        };
        let known = KnownCode {
            identity: CodeIdentity {
                start: 0,
                size: 200,
                table: 0,
            },
            tables: CodeTables::Optimized {
                positions: vec![
                    3, 160, 6, 79, 244, 254, 255, 255, 15, 71, 203, 252, 255, 255, 15, 53, 167, 2,
                ],
                shared: Some(0),
                inlinings: vec![Inlining {
                    call,
                    shared: Some(1),
                }],
            },
            inlined: vec![Some(function("fetchQuota"))],
            positions: HashMap::new(),
        };
        (known, function("checkQuota"))
    }

    fn names(located: &[Located]) -> Vec<(&str, Option<u32>)> {
        located
            .iter()
            .map(|(f, offset)| (f.name.as_str(), *offset))
            .collect()
    }

    #[test]
    fn inlined_functions_are_frames_of_their_own() {
        let (known, function) = check_quota(466);
        let CodeTables::Optimized { positions, .. } = &known.tables else {
            unreachable!()
        };
        let at = |pc| {
            let raw = positions::position_at(positions, pc).expect("a position");
            inlined_frames(&known, &function, SourcePosition::decode(raw)).expect("frames")
        };
        // The return address 74 less one: in the inlined call.
        assert_eq!(
            names(&at(73)),
            [("fetchQuota", Some(164)), ("checkQuota", Some(232))]
        );
        assert_eq!(names(&at(74)), [("checkQuota", Some(273))]);
    }

    #[test]
    fn an_inlining_chain_that_does_not_hold_up_gives_no_position() {
        // The call said to be in an inlining of its own (id 0 again).
        let (known, function) = check_quota(466 | (1 << 31));
        let inlined = SourcePosition {
            script_offset: Some(164),
            inlining: Some(0),
        };
        assert!(inlined_frames(&known, &function, inlined).is_none());
        // An inlining id the code does not have.
        let unknown = SourcePosition {
            script_offset: Some(164),
            inlining: Some(3),
        };
        assert!(inlined_frames(&known, &function, unknown).is_none());
    }
}
