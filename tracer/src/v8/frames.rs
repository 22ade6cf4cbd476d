//! JavaScript frames in a copied stack. V8 keeps a frame-pointer chain
//! through its frames; a JavaScript frame holds its context at fp-8 (a
//! typed frame holds a Smi marker there instead) and its JSFunction at
//! fp-16; an interpreted frame also its BytecodeArray and bytecode offset.
//! The slots are read from the stack as copied at the event; the objects
//! they point to from the live process, each checked by type.

use tracer_common::UserRegs;

use super::{
    heap::{Heap, smi, untag},
    positions::script_offset_at,
};

/// Position tables beyond this size are not read.
const MAX_POSITION_TABLE: u64 = 4 << 20;

/// The stack memory copied at an event, from `regs.sp` up.
pub struct StackCopy<'a> {
    pub regs: &'a UserRegs,
    pub bytes: &'a [u8],
}

impl StackCopy<'_> {
    fn slot(&self, fp: u64, offset: i64) -> Option<u64> {
        let address = fp.checked_add_signed(offset)?;
        let start = usize::try_from(address.checked_sub(self.regs.sp)?).ok()?;
        Some(u64::from_le_bytes(
            self.bytes.get(start..start + 8)?.try_into().ok()?,
        ))
    }
}

/// How the code of a frame runs: in the interpreter (its pc in V8's
/// builtins, the bytecode handlers), or compiled to machine code (Sparkplug,
/// Maglev, TurboFan: its pc in the JIT's code space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Interpreted,
    Compiled,
}

/// What a frame of JavaScript shows, read from the heap.
pub struct JsFrameObjects {
    /// Tagged pointers.
    pub shared: u64,
    pub script: Option<u64>,
    /// The script offset the frame is at, if its bytecode says.
    pub script_offset: Option<u32>,
}

/// The objects of the JavaScript frame whose frame pointer is `fp`; None
/// if the slots do not hold a JavaScript frame's (a typed frame, native
/// code's frame pointer) or an object fails its type check.
pub fn frame_objects(
    heap: &Heap,
    stack: &StackCopy,
    fp: u64,
    tier: Tier,
) -> Option<JsFrameObjects> {
    let layout = heap.layout;
    untag(stack.slot(fp, layout.fp_context)?)?;
    let shared = heap.shared_of(stack.slot(fp, layout.fp_function)?)?;
    let script = heap.script_of(shared);
    let script_offset = match tier {
        Tier::Interpreted => bytecode_script_offset(heap, stack, fp),
        Tier::Compiled => None,
    };
    Some(JsFrameObjects {
        shared,
        script,
        script_offset,
    })
}

/// The script offset of an interpreted frame's current bytecode, from the
/// BytecodeArray's position table (present once V8 has collected source
/// positions for the function: they are collected lazily).
fn bytecode_script_offset(heap: &Heap, stack: &StackCopy, fp: u64) -> Option<u32> {
    let layout = heap.layout;
    let bytecode = stack.slot(fp, layout.fp_bytecode_array)?;
    let address = heap.typed(bytecode, |t| t == layout.types.bytecode_array)?;
    // The frame holds the offset from the tagged array pointer.
    let raw = smi(stack.slot(fp, layout.fp_bytecode_offset)?)?;
    let offset = u32::try_from(raw - (layout.bytecode_data as i64 - 1)).ok()?;
    let table = heap.field(address, layout.bytecode_source_positions)?;
    let table = heap.byte_array(table, MAX_POSITION_TABLE)?;
    script_offset_at(&table, offset)
}
