//! Compiled code (Sparkplug, Maglev, TurboFan): the Code object a
//! compiled frame runs, read from the heap with its tables, each object
//! checked by type. A frame does not point to its code: the function's
//! current code is taken (its JSFunction's `code`), and used only if its
//! instructions hold the frame's pc; code the function no longer runs
//! (deoptimized, or compiled on the stack: OSR) gives no position.

use super::{
    code_layout::{CodeLayout, InstructionStart},
    heap::{Heap, smi, untag},
};

/// Position and bytecode offset tables beyond this size are not read.
const MAX_TABLE: u64 = 4 << 20;
/// Functions inlined into one code object, at most.
const MAX_INLINED: u64 = 4096;
/// The size of an `InliningPosition`: a SourcePosition (8 bytes), the
/// inlined function's index in the literal array (4), padding (4).
const INLINING_POSITION_SIZE: usize = 16;

/// What identifies a Code object still there: the fields it is cached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeIdentity {
    pub start: u64,
    pub size: u64,
    pub table: u64,
}

/// A Code object's tables.
pub enum CodeTables {
    /// Sparkplug code: its bytecode offset table.
    Baseline { bytecode_offsets: Vec<u8> },
    /// Optimized code: its source position table, and the functions
    /// inlined into it.
    Optimized {
        positions: Vec<u8>,
        inlinings: Vec<Inlining>,
    },
}

/// A function inlined into optimized code (V8's `InliningPosition`).
#[derive(Debug, Clone, Copy)]
pub struct Inlining {
    /// Where it was inlined: a raw SourcePosition in the caller.
    pub call: i64,
    /// Its SharedFunctionInfo (tagged), if the literal array holds one.
    pub shared: Option<u64>,
}

impl Heap<'_> {
    /// The Code object (its address) of the JSFunction `function` points
    /// to, and what identifies it; None if the field is not a Code.
    pub fn code_of(&self, code: &CodeLayout, function: u64) -> Option<(u64, CodeIdentity)> {
        let tagged = self.field(untag(function)?, code.function_code)?;
        let address = self.typed(tagged, |t| t == code.code_type)?;
        let start = match code.instruction_start {
            InstructionStart::Header(size) => address + size,
            InstructionStart::Field(offset) => self.field(address, offset)?,
        };
        let bytes: [u8; 4] = self
            .memory
            .read_array(address.checked_add(code.instruction_size)?)?;
        let size = u64::try_from(i32::from_le_bytes(bytes)).ok()?;
        let table = self.field(address, code.position_table)?;
        Some((address, CodeIdentity { start, size, table }))
    }

    /// The tables of the Code object at `address`.
    pub fn code_tables(
        &self,
        code: &CodeLayout,
        address: u64,
        identity: CodeIdentity,
    ) -> Option<CodeTables> {
        let flags: [u8; 4] = self.memory.read_array(address.checked_add(code.flags)?)?;
        let kind = (u32::from_le_bytes(flags) >> code.kind_shift) & code.kind_mask;
        let table = self.byte_array(identity.table, MAX_TABLE)?;
        if kind == code.baseline_kind {
            return Some(CodeTables::Baseline {
                bytecode_offsets: table,
            });
        }
        let deoptimization = self.field(address, code.deoptimization_data)?;
        Some(CodeTables::Optimized {
            positions: table,
            inlinings: self.inlinings(code, deoptimization).unwrap_or_default(),
        })
    }

    /// The functions inlined into optimized code, from its deoptimization
    /// data: the inlining positions (a byte array), and the literal array
    /// whose entries they index.
    fn inlinings(&self, code: &CodeLayout, deoptimization: u64) -> Option<Vec<Inlining>> {
        let data = self.typed(deoptimization, |t| code.fixed_arrays.contains(&t))?;
        let length = u64::try_from(smi(self.field(data, self.layout.array_length)?)?).ok()?;
        let entry = |index: u64| {
            (index < length)
                .then(|| self.field(data, self.layout.array_data + index * 8))
                .flatten()
        };
        let positions = self.byte_array(
            entry(code.inlining_positions_index)?,
            MAX_INLINED * INLINING_POSITION_SIZE as u64,
        )?;
        let literals = untag(entry(code.literal_array_index)?)?;
        let literal_count =
            u64::try_from(smi(self.field(literals, self.layout.array_length)?)?).ok()?;
        positions
            .chunks_exact(INLINING_POSITION_SIZE)
            .map(|entry| {
                let call = i64::from_le_bytes(entry[..8].try_into().ok()?);
                let index = i32::from_le_bytes(entry[8..12].try_into().ok()?);
                let shared = u64::try_from(index)
                    .ok()
                    .filter(|&i| i < literal_count)
                    .and_then(|i| self.field(literals, self.layout.array_data + i * 8))
                    // A weak reference: tag 3.
                    .map(|value| value & !2)
                    .filter(|&value| {
                        self.instance_type(value) == Some(self.layout.types.shared_function_info)
                    });
                Some(Inlining { call, shared })
            })
            .collect()
    }
}
