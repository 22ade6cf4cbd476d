//! Compiled code (Sparkplug, Maglev, TurboFan): the Code object a
//! compiled frame runs, read from the heap with its tables, each object
//! checked by type. A frame does not point to its code: its function's
//! current code (its JSFunction's `code`) is taken if its instructions
//! hold the frame's pc; else (code compiled on the stack, OSR, or code
//! the function no longer points to) the code is found from the pc, by
//! the header in front of its instructions, and used only if it is the
//! frame's function's: optimized code for its SharedFunctionInfo, or
//! baseline code of the frame's BytecodeArray.

use super::{
    code_layout::{CodeLayout, InstructionStart, STREAM_CODE},
    heap::{Heap, smi, untag},
};

/// Position and bytecode offset tables beyond this size are not read.
const MAX_TABLE: u64 = 4 << 20;
/// Functions inlined into one code object, at most.
const MAX_INLINED: u64 = 4096;
/// The size of an `InliningPosition`: a SourcePosition (8 bytes), the
/// inlined function's index in the literal array (4), padding (4).
const INLINING_POSITION_SIZE: usize = 16;
/// How far back from a pc the header of its code is looked for: past the
/// size of all but huge optimized functions.
const MAX_SCAN: u64 = 1 << 20;
/// The scan reads a page at a time (a failed read ends it).
const PAGE: u64 = 4096;
/// V8 starts instructions at multiples of this on x86-64 (at least: 64
/// in the versions read).
const CODE_ALIGNMENT: u64 = 32;

/// What identifies a Code object still there: the fields it is cached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeIdentity {
    pub start: u64,
    pub size: u64,
    pub table: u64,
}

impl CodeIdentity {
    pub fn holds(&self, pc: u64) -> bool {
        pc.checked_sub(self.start)
            .is_some_and(|offset| offset < self.size)
    }
}

/// A Code object's tables.
pub enum CodeTables {
    /// Sparkplug code: its bytecode offset table, and the BytecodeArray
    /// it was compiled from (its address; in the slot optimized code has
    /// its deoptimization data in).
    Baseline {
        bytecode_offsets: Vec<u8>,
        bytecode: Option<u64>,
    },
    /// Optimized code: its source position table, its function (a
    /// SharedFunctionInfo, tagged), and the functions inlined into it.
    Optimized {
        positions: Vec<u8>,
        shared: Option<u64>,
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
    /// The Code object (its address) the JSFunction `function` points to.
    pub fn function_code(&self, code: &CodeLayout, function: u64) -> Option<u64> {
        let tagged = self.field(untag(function)?, code.function_code)?;
        self.typed(tagged, |t| t == code.code_type)
    }

    /// What identifies the Code object at `address`.
    pub fn code_identity(&self, code: &CodeLayout, address: u64) -> Option<CodeIdentity> {
        let start = match code.instruction_start {
            InstructionStart::Header(size) => address + size,
            InstructionStart::Stream(stream) => self.field(address, stream.start)?,
        };
        let bytes: [u8; 4] = self
            .memory
            .read_array(address.checked_add(code.instruction_size)?)?;
        let size = u64::try_from(i32::from_le_bytes(bytes)).ok()?;
        let table = self.field(address, code.position_table)?;
        Some(CodeIdentity { start, size, table })
    }

    /// The map word of the objects whose instructions follow their header
    /// (Code objects in V8 10, InstructionStreams since), from the Code
    /// object at `address`.
    pub fn header_map(&self, code: &CodeLayout, address: u64) -> Option<u64> {
        let object = match code.instruction_start {
            InstructionStart::Header(_) => address,
            InstructionStart::Stream(layout) => {
                let stream = self.field(address, layout.stream)?;
                self.typed(stream, |t| t == layout.stream_type)?
            }
        };
        self.field(object, self.layout.map)
    }

    /// The Code object whose instructions hold `pc`, and the map word of
    /// the header before them: the nearest header before the pc (an object
    /// whose map word is `map`, or while that is unknown, one whose map is
    /// of the header's type) that leads to a Code object whose
    /// instructions start right after it, and hold the pc. Words of the
    /// instructions that look like a header lead to no such Code and are
    /// passed over.
    pub fn code_containing(
        &self,
        code: &CodeLayout,
        map: Option<u64>,
        pc: u64,
    ) -> Option<(u64, CodeIdentity, u64)> {
        let (header, header_type) = match code.instruction_start {
            InstructionStart::Header(size) => (size, code.code_type),
            InstructionStart::Stream(layout) => (layout.header, layout.stream_type),
        };
        let mut top = (pc & !(CODE_ALIGNMENT - 1)).checked_sub(header)?;
        let bottom = top.saturating_sub(MAX_SCAN);
        loop {
            let low = (top & !(PAGE - 1)).max(bottom);
            let bytes = self
                .memory
                .read_vec(low, usize::try_from(top + 8 - low).ok()?)?;
            for (index, word) in bytes.chunks_exact(8).enumerate().rev() {
                let object = low + 8 * index as u64;
                if !(object + header).is_multiple_of(CODE_ALIGNMENT) {
                    continue;
                }
                let word = u64::from_le_bytes(word.try_into().ok()?);
                let is_header = match map {
                    Some(map) => word == map,
                    None => {
                        untag(word).is_some() && self.instance_type(object + 1) == Some(header_type)
                    }
                };
                if !is_header {
                    continue;
                }
                if let Some((address, identity)) =
                    self.code_with_header(code, object, object + header)
                {
                    return identity.holds(pc).then_some((address, identity, word));
                }
            }
            if low <= bottom {
                return None;
            }
            top = low - 8;
        }
    }

    /// The Code object whose instructions start at `start`, after the
    /// header object at `object`.
    fn code_with_header(
        &self,
        code: &CodeLayout,
        object: u64,
        start: u64,
    ) -> Option<(u64, CodeIdentity)> {
        let address = match code.instruction_start {
            InstructionStart::Header(_) => self.typed(object + 1, |t| t == code.code_type)?,
            InstructionStart::Stream(_) => {
                let tagged = self.field(object, STREAM_CODE)?;
                self.typed(tagged, |t| t == code.code_type)?
            }
        };
        let identity = self.code_identity(code, address)?;
        (identity.start == start).then_some((address, identity))
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
        let deoptimization = self.field(address, code.deoptimization_data)?;
        if kind == code.baseline_kind {
            let bytecode_array = self.layout.types.bytecode_array;
            return Some(CodeTables::Baseline {
                bytecode_offsets: table,
                bytecode: self.typed(deoptimization, |t| t == bytecode_array),
            });
        }
        let (shared, inlinings) = self
            .deoptimization(code, deoptimization)
            .unwrap_or_default();
        Some(CodeTables::Optimized {
            positions: table,
            shared,
            inlinings,
        })
    }

    /// From optimized code's deoptimization data: its function, and the
    /// functions inlined into it.
    fn deoptimization(
        &self,
        code: &CodeLayout,
        deoptimization: u64,
    ) -> Option<(Option<u64>, Vec<Inlining>)> {
        let data = self.typed(deoptimization, |t| code.fixed_arrays.contains(&t))?;
        let length = u64::try_from(smi(self.field(data, self.layout.array_length)?)?).ok()?;
        let entry = |index: u64| {
            (index < length)
                .then(|| self.field(data, self.layout.array_data + index * 8))
                .flatten()
        };
        let shared = entry(code.shared_index).filter(|&value| self.is_shared(value));
        let inlinings = entry(code.inlining_positions_index)
            .zip(entry(code.literal_array_index))
            .and_then(|(positions, literals)| self.inlinings(positions, literals))
            .unwrap_or_default();
        Some((shared, inlinings))
    }

    /// The functions inlined into optimized code: its inlining positions
    /// (a byte array), each naming its function by index in the literal
    /// array.
    fn inlinings(&self, positions: u64, literals: u64) -> Option<Vec<Inlining>> {
        let positions = self.byte_array(positions, MAX_INLINED * INLINING_POSITION_SIZE as u64)?;
        let literals = untag(literals)?;
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
                    .filter(|&value| self.is_shared(value));
                Some(Inlining { call, shared })
            })
            .collect()
    }

    fn is_shared(&self, tagged: u64) -> bool {
        self.instance_type(tagged) == Some(self.layout.types.shared_function_info)
    }
}
