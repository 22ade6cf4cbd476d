//! The layout of V8's Code objects (compiled code: its instructions, kind,
//! position table, deoptimization data), from the post-mortem constants
//! where the binary exports them, else derived for its V8 version: node
//! binaries lost some of these constants with every V8 rework of Code
//! (Node 18, V8 10.2: no position table; Node 20, V8 11.3: no instruction
//! start, size or flags; Node 22, V8 12.4: no position table). Each derived
//! offset is checked when used: a Code object's pc range must hold the pc,
//! its tables must be of their types, the functions they name must be
//! SharedFunctionInfos; where one is not, the frame keeps its function's
//! first line.

use std::ops::Range;

use super::constants::Constants;
use crate::procfs::memory::ProcessMemory;

/// V8's version (major, minor, build), from `v8::internal::Version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u32, u32, u32);

impl Version {
    /// The prefix of the symbols it is read from.
    pub const PREFIX: &str = "_ZN2v88internal7Version6";

    pub fn read(
        symbols: &[(String, Range<u64>)],
        bias: u64,
        memory: &ProcessMemory,
    ) -> Option<Self> {
        let part = |name: &str| {
            let (_, range) = symbols
                .iter()
                .find(|(symbol, _)| symbol.strip_prefix(Self::PREFIX) == Some(name))?;
            let bytes: [u8; 4] = memory.read_array(range.start.wrapping_add(bias))?;
            Some(u32::from_le_bytes(bytes))
        };
        Some(Self(part("major_E")?, part("minor_E")?, part("build_E")?))
    }
}

/// Where a Code object's instructions are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionStart {
    /// In it, after its header of this size (V8 10 and before).
    Header(u64),
    /// In an InstructionStream of their own (V8 11 on), which points back
    /// to its Code.
    Stream(StreamLayout),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLayout {
    /// The Code's field holding the instructions' address.
    pub start: u64,
    /// The Code's field pointing to its InstructionStream.
    pub stream: u64,
    /// The InstructionStream's header: its instructions follow.
    pub header: u64,
    pub stream_type: u16,
}

/// An InstructionStream's field pointing back to its Code: the first
/// after the map (V8 11.3 and 12.4).
pub const STREAM_CODE: u64 = POINTER;

#[derive(Debug, Clone)]
pub struct CodeLayout {
    pub function_code: u64,
    pub instruction_start: InstructionStart,
    /// An int32.
    pub instruction_size: u64,
    /// A uint32 holding the code kind.
    pub flags: u64,
    pub kind_mask: u32,
    pub kind_shift: u32,
    pub baseline_kind: u32,
    /// Source positions (optimized code), or bytecode offsets (baseline).
    pub position_table: u64,
    pub deoptimization_data: u64,
    /// Entries of the deoptimization data (a FixedArray).
    pub literal_array_index: u64,
    pub inlining_positions_index: u64,
    /// The deoptimization data's entry naming the code's function.
    pub shared_index: u64,
    pub code_type: u16,
    /// FixedArray, or V8 12's TrustedFixedArray and ProtectedFixedArray.
    pub fixed_arrays: Vec<u16>,
}

const POINTER: u64 = 8;

impl Constants {
    pub(super) fn code_layout(&self, version: Version) -> Option<CodeLayout> {
        let shared = self.field("JSFunction", &["shared"])?;
        // Not exported by V8 11: right before the SharedFunctionInfo since
        // 11.7.368, three fields after it before.
        let function_code =
            self.field("JSFunction", &["code"])
                .unwrap_or(if version >= Version(11, 7, 368) {
                    shared - POINTER
                } else {
                    shared + 3 * POINTER
                });
        let has_instruction_stream = self
            .instance_type("InstructionStream", "INSTRUCTION_STREAM_TYPE")
            .is_some();
        let start = self.field("Code", &["instruction_start"]);
        // V8 11 on: the InstructionStream is the field before the start.
        let stream = |start: u64| {
            Some(InstructionStart::Stream(StreamLayout {
                start,
                stream: self
                    .field("Code", &["instruction_stream"])
                    .unwrap_or(start.checked_sub(POINTER)?),
                header: self.field("InstructionStream", &["instruction_start"])?,
                stream_type: self.instance_type("InstructionStream", "INSTRUCTION_STREAM_TYPE")?,
            }))
        };
        let table = self.field("Code", &["source_position_table"]);
        let (instruction_start, instruction_size, flags, position_table) =
            match (self.field("Code", &["instruction_size"]), table) {
                // V8 10: the table two fields before the size.
                (Some(size), _) if !has_instruction_stream => (
                    InstructionStart::Header(start?),
                    size,
                    self.field("Code", &["flags"])?,
                    table.unwrap_or(size.checked_sub(2 * POINTER)?),
                ),
                // V8 12: the table before the wrapper and the instruction
                // stream that precede the start.
                (Some(size), _) => (
                    stream(start?)?,
                    size,
                    self.field("Code", &["flags"])?,
                    table.unwrap_or(start?.checked_sub(3 * POINTER)?),
                ),
                // V8 11: the table, the instruction stream, the start, the
                // flags, and the size after the builtin id and the
                // kind-specific flags until 11.4.59 merged those.
                (None, Some(table)) => {
                    let start = table + 2 * POINTER;
                    let flags = start + POINTER;
                    let merged = version >= Version(11, 4, 59);
                    (
                        stream(start)?,
                        flags + if merged { 4 } else { 8 },
                        flags,
                        table,
                    )
                }
                (None, None) => return None,
            };
        let index = |name: &str, default: u64| {
            self.value(&format!("DeoptimizationData{name}Index"))
                .and_then(|value| u64::try_from(value).ok())
                .unwrap_or(default)
        };
        Some(CodeLayout {
            function_code,
            instruction_start,
            instruction_size,
            flags,
            kind_mask: u32::try_from(self.value("CodeKindFieldMask")?).ok()?,
            kind_shift: u32::try_from(self.value("CodeKindFieldShift").unwrap_or(0)).ok()?,
            baseline_kind: u32::try_from(self.value("CodeKindBaseline")?).ok()?,
            position_table,
            deoptimization_data: self
                .field("Code", &["deoptimization_data"])
                .unwrap_or(position_table.checked_sub(POINTER)?),
            literal_array_index: index("LiteralArray", 2),
            shared_index: index("SharedFunctionInfo", 6),
            inlining_positions_index: index("InliningPositions", 7),
            code_type: self.instance_type("Code", "CODE_TYPE")?,
            fixed_arrays: [
                self.instance_type("FixedArray", "FIXED_ARRAY_TYPE"),
                self.instance_type("TrustedFixedArray", "TRUSTED_FIXED_ARRAY_TYPE"),
                self.instance_type("ProtectedFixedArray", "PROTECTED_FIXED_ARRAY_TYPE"),
            ]
            .into_iter()
            .flatten()
            .collect(),
        })
    }
}
