//! The frames of compiled code (Sparkplug, Maglev, TurboFan) at a pc:
//! the Code object that holds it (code.rs), its tables read once and
//! cached, and the positions they give, with the functions inlined there.

use std::{collections::HashMap, sync::Arc};

use super::{
    JsRuntime, KnownFunction, MAX_CODES, StackCopy, baseline,
    code::{CodeIdentity, CodeTables},
    frames,
    heap::Heap,
    positions::{self, SourcePosition},
};

/// Positions remembered per code object, at most.
const MAX_CODE_POSITIONS: usize = 1 << 10;

/// A Code object read from the heap: used while the fields that identify
/// it are unchanged (the GC moves and frees code).
pub struct KnownCode {
    identity: CodeIdentity,
    tables: CodeTables,
    /// The functions inlined into it (optimized code), by inlining id.
    inlined: Vec<Option<Arc<KnownFunction>>>,
    /// The frames found at each pc offset, innermost first.
    positions: HashMap<u64, Vec<Located>>,
}

/// A function and the script offset a frame runs it at (None: unknown,
/// the function's first line stands for it).
pub type Located = (Arc<KnownFunction>, Option<u32>);

impl JsRuntime {
    /// The Code object (address) holding `pc` and what identifies it:
    /// the function's own code, else code found from the pc (`true`).
    fn code_holding(&mut self, function_ptr: u64, pc: u64) -> Option<(u64, CodeIdentity, bool)> {
        let layout = self.layout.code.as_ref()?;
        let heap = Heap {
            memory: &self.memory,
            layout: &self.layout,
        };
        let own = heap.function_code(layout, function_ptr);
        let own = own.and_then(|address| Some((address, heap.code_identity(layout, address)?)));
        if let Some((address, identity)) = own
            && identity.holds(pc)
        {
            return Some((address, identity, false));
        }
        if self.header_map.is_none() {
            self.header_map = own.and_then(|(address, _)| heap.header_map(layout, address));
        }
        if let Some(&found) = self.scanned.get(&pc) {
            let address = found?;
            heap.typed(address + 1, |t| t == layout.code_type)?;
            let identity = heap.code_identity(layout, address)?;
            return identity.holds(pc).then_some((address, identity, true));
        }
        let found = heap.code_containing(layout, self.header_map, pc);
        if self.scanned.len() >= MAX_CODES {
            self.scanned.clear();
        }
        self.scanned.insert(pc, found.map(|(address, ..)| address));
        let (address, identity, map) = found?;
        self.header_map = Some(map);
        Some((address, identity, true))
    }

    /// Reads the tables of the Code object at `address` and the functions
    /// inlined into it, unless they are cached for it as it is still.
    fn read_code(&mut self, address: u64, identity: CodeIdentity) -> Option<()> {
        if self
            .codes
            .get(&address)
            .is_some_and(|known| known.identity == identity)
        {
            return Some(());
        }
        let heap = Heap {
            memory: &self.memory,
            layout: &self.layout,
        };
        let tables = heap.code_tables(self.layout.code.as_ref()?, address, identity)?;
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
        Some(())
    }

    /// The frames of compiled code at `pc`, innermost first; None if no
    /// code of the function holds the pc, or its tables say nothing there.
    pub(super) fn compiled(
        &mut self,
        stack: &StackCopy,
        fp: u64,
        function_ptr: u64,
        pc: u64,
        function: &Arc<KnownFunction>,
    ) -> Option<Vec<Located>> {
        let (address, identity, scanned) = self.code_holding(function_ptr, pc)?;
        self.read_code(address, identity)?;
        let pc_offset = pc - identity.start;
        let known = self.codes.get(&address)?;
        // Code found from the pc: used only if it is the frame's
        // function's (OSR code, baseline code the function has left for
        // optimized code while the frame still runs it).
        let heap = Heap {
            memory: &self.memory,
            layout: &self.layout,
        };
        let ours = || match &known.tables {
            CodeTables::Optimized { shared, .. } => *shared == Some(function.shared),
            CodeTables::Baseline { bytecode, .. } => {
                bytecode.is_some() && *bytecode == frames::frame_bytecode(&heap, stack, fp)
            }
        };
        if scanned && !ours() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v8::code::Inlining;

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
