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
/// Bytecode arrays beyond this size are not read.
const MAX_BYTECODE: u64 = 4 << 20;

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
/// Maglev, TurboFan: its pc in the JIT's code space). `pc` is the address
/// looked up: a return address less one, the call's last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Interpreted,
    Compiled { pc: u64 },
}

/// The JSFunction (a tagged pointer) of the JavaScript frame whose frame
/// pointer is `fp`, from the stack copy; None if the slots do not hold a
/// JavaScript frame's (a typed frame holds a Smi marker where the context
/// is; native code's frame pointer holds neither).
pub fn frame_function(heap: &Heap, stack: &StackCopy, fp: u64) -> Option<u64> {
    let layout = heap.layout;
    untag(stack.slot(fp, layout.fp_context)?)?;
    let function = stack.slot(fp, layout.fp_function)?;
    untag(function).map(|_| function)
}

/// The BytecodeArray (its address) of an interpreted or baseline frame.
pub fn frame_bytecode(heap: &Heap, stack: &StackCopy, fp: u64) -> Option<u64> {
    let layout = heap.layout;
    let bytecode = stack.slot(fp, layout.fp_bytecode_array)?;
    heap.typed(bytecode, |t| t == layout.types.bytecode_array)
}

/// The offset of the bytecode an interpreted frame runs, from its slot
/// (an offset from the tagged array pointer).
pub fn interpreted_offset(heap: &Heap, stack: &StackCopy, fp: u64) -> Option<u32> {
    let raw = smi(stack.slot(fp, heap.layout.fp_bytecode_offset)?)?;
    u32::try_from(raw - (heap.layout.bytecode_data as i64 - 1)).ok()
}

impl Heap<'_> {
    /// The script offset of the bytecode at `offset` in the BytecodeArray
    /// at `address`, from its position table (present once V8 has
    /// collected source positions for the function: they are collected
    /// lazily).
    pub fn bytecode_script_offset(&self, address: u64, offset: u32) -> Option<u32> {
        let table = self.field(address, self.layout.bytecode_source_positions)?;
        let table = self.byte_array(table, MAX_POSITION_TABLE)?;
        script_offset_at(&table, offset)
    }

    /// The bytecodes of the BytecodeArray at `address`.
    pub fn bytecodes(&self, address: u64) -> Option<Vec<u8>> {
        let length = smi(self.field(address, self.layout.array_length)?)?;
        let length = u64::try_from(length).ok().filter(|&l| l <= MAX_BYTECODE)?;
        self.memory.read_vec(
            address + self.layout.bytecode_data,
            usize::try_from(length).ok()?,
        )
    }
}
