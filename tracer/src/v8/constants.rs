//! V8's frame and object layouts in one node binary, from the post-mortem
//! debug constants it exports (`v8dbg_*`, the ones llnode reads): each is an
//! int in the binary's data, read here from the running process (those in
//! `.bss` are 0 and only exist there).

use std::{collections::HashMap, ops::Range};

use super::code_layout::{CodeLayout, Version};
use crate::{procfs::memory::ProcessMemory, unwind::ModuleFile};

pub const PREFIX: &str = "v8dbg_";

/// Offsets and type numbers of the objects a JS frame leads to.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Frame slots, relative to the frame pointer.
    pub fp_context: i64,
    pub fp_function: i64,
    pub fp_bytecode_array: i64,
    pub fp_bytecode_offset: i64,
    pub map: u64,
    pub map_instance_type: u64,
    pub function_shared: u64,
    pub shared_name_or_scope_info: u64,
    pub shared_script: u64,
    pub script_name: u64,
    pub script_source: u64,
    pub script_line_ends: u64,
    pub array_length: u64,
    pub array_data: u64,
    pub bytecode_data: u64,
    pub bytecode_source_positions: u64,
    pub scope_info_first_vars: u64,
    pub scope_info_context_locals: u64,
    pub strings: StringLayout,
    pub types: Types,
    /// Compiled code's Code objects, where this V8's layout of them is
    /// known (else compiled frames give their function's first line).
    pub code: Option<CodeLayout>,
}

#[derive(Debug, Clone)]
pub struct StringLayout {
    pub length: u64,
    pub seq_chars: u64,
    pub cons_first: u64,
    pub cons_second: u64,
    pub thin_actual: u64,
    pub sliced_parent: u64,
    pub sliced_offset: u64,
    pub first_nonstring_type: u16,
    pub representation_mask: u16,
    pub encoding_mask: u16,
    pub one_byte_tag: u16,
    pub seq_tag: u16,
    pub cons_tag: u16,
    pub sliced_tag: u16,
    pub thin_tag: u16,
}

/// Instance types, as a Map states them.
#[derive(Debug, Clone)]
pub struct Types {
    pub js_function: u16,
    pub shared_function_info: u16,
    pub script: u16,
    pub bytecode_array: u16,
    pub scope_info: u16,
    pub fixed_array: u16,
    /// ByteArray, or V8 12's TrustedByteArray (position tables).
    pub byte_arrays: Vec<u16>,
}

/// V8 numbers JSFunction and its subclasses (class constructors, the
/// built-in constructors) consecutively from JS_FUNCTION_TYPE: 15 types
/// since V8 9.6. The binary exports only the first.
const JS_FUNCTION_TYPES: u16 = 15;

impl Types {
    pub fn is_js_function(&self, instance_type: u16) -> bool {
        (self.js_function..self.js_function + JS_FUNCTION_TYPES).contains(&instance_type)
    }
}

/// The constants of `file`, among its `symbols` (those with [`PREFIX`] and
/// V8's version's), mapped with `bias` in the process whose memory is
/// `memory`; None if it is not a V8 binary or lacks one we need.
pub fn read_layout(
    file: &ModuleFile,
    symbols: &[(String, Range<u64>)],
    bias: u64,
    memory: &ProcessMemory,
) -> Option<Layout> {
    let values: HashMap<String, i64> = symbols
        .iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .filter_map(|(name, range)| {
            let bytes: [u8; 4] = memory.read_array(range.start.wrapping_add(bias))?;
            Some((
                name[PREFIX.len()..].to_string(),
                i64::from(i32::from_le_bytes(bytes)),
            ))
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    let constants = Constants(values);
    let layout = constants.layout(Version::read(symbols, bias, memory));
    if layout.is_none() {
        log::info!(
            "{}: V8 constants incomplete, no JavaScript frames",
            file.path
        );
    }
    layout
}

pub(super) struct Constants(HashMap<String, i64>);

impl Constants {
    pub(super) fn value(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    fn offset(&self, name: &str) -> Option<u64> {
        u64::try_from(self.value(name)?).ok()
    }

    /// `class_CLASS__FIELD__TYPE`, whatever the type's spelling (it changes
    /// between versions: `Object`, `Tagged_Object_`), for the first field
    /// name the binary has.
    pub(super) fn field(&self, class: &str, fields: &[&str]) -> Option<u64> {
        fields.iter().find_map(|field| {
            let prefix = format!("class_{class}__{field}__");
            let (_, value) = self.0.iter().find(|(name, _)| name.starts_with(&prefix))?;
            u64::try_from(*value).ok()
        })
    }

    /// `type_CLASS__NAME_TYPE`.
    pub(super) fn instance_type(&self, class: &str, name: &str) -> Option<u16> {
        u16::try_from(self.value(&format!("type_{class}__{name}"))?).ok()
    }

    fn tag(&self, name: &str) -> Option<u16> {
        u16::try_from(self.value(name)?).ok()
    }

    /// The BytecodeArray's position table, not exported since V8 9.4: the
    /// field after the `wrapper` in V8 12, else after the constant pool and
    /// the handler table that follow the length. A wrong guess reads as no
    /// table: the field must point to a ByteArray.
    fn bytecode_source_positions(&self, array_length: u64) -> u64 {
        self.field("BytecodeArray", &["source_position_table"])
            .or_else(|| Some(self.field("BytecodeArray", &["wrapper"])? + 8))
            .unwrap_or(array_length + 3 * 8)
    }

    fn layout(&self, version: Option<Version>) -> Option<Layout> {
        let array_length = self.field("FixedArrayBase", &["length"])?;
        Some(Layout {
            fp_context: self.value("off_fp_context")?,
            fp_function: self.value("off_fp_function")?,
            fp_bytecode_array: self.value("off_fp_bytecode_array")?,
            fp_bytecode_offset: self.value("off_fp_bytecode_offset")?,
            map: self.field("HeapObject", &["map"])?,
            map_instance_type: self.field("Map", &["instance_type"])?,
            function_shared: self.field("JSFunction", &["shared"])?,
            shared_name_or_scope_info: self.field("SharedFunctionInfo", &["name_or_scope_info"])?,
            shared_script: self.field("SharedFunctionInfo", &["script_or_debug_info", "script"])?,
            script_name: self.field("Script", &["name"])?,
            script_source: self.field("Script", &["source"])?,
            script_line_ends: self.field("Script", &["line_ends"])?,
            array_length,
            array_data: self.field("FixedArray", &["data"])?,
            bytecode_data: self.field("BytecodeArray", &["data"])?,
            bytecode_source_positions: self.bytecode_source_positions(array_length),
            scope_info_first_vars: self.offset("scopeinfo_idx_first_vars")?,
            scope_info_context_locals: self.offset("scopeinfo_idx_ncontextlocals")?,
            strings: StringLayout {
                length: self.field("String", &["length"])?,
                seq_chars: self.field("SeqOneByteString", &["chars"])?,
                cons_first: self.field("ConsString", &["first"])?,
                cons_second: self.field("ConsString", &["second"])?,
                thin_actual: self.field("ThinString", &["actual"])?,
                sliced_parent: self.field("SlicedString", &["parent"])?,
                sliced_offset: self.field("SlicedString", &["offset"])?,
                first_nonstring_type: self.tag("FirstNonstringType")?,
                representation_mask: self.tag("StringRepresentationMask")?,
                encoding_mask: self.tag("StringEncodingMask")?,
                one_byte_tag: self.tag("OneByteStringTag")?,
                seq_tag: self.tag("SeqStringTag")?,
                cons_tag: self.tag("ConsStringTag")?,
                sliced_tag: self.tag("SlicedStringTag")?,
                thin_tag: self.tag("ThinStringTag")?,
            },
            types: Types {
                js_function: self.instance_type("JSFunction", "JS_FUNCTION_TYPE")?,
                shared_function_info: self
                    .instance_type("SharedFunctionInfo", "SHARED_FUNCTION_INFO_TYPE")?,
                script: self.instance_type("Script", "SCRIPT_TYPE")?,
                bytecode_array: self.instance_type("BytecodeArray", "BYTECODE_ARRAY_TYPE")?,
                scope_info: self.instance_type("ScopeInfo", "SCOPE_INFO_TYPE")?,
                fixed_array: self.instance_type("FixedArray", "FIXED_ARRAY_TYPE")?,
                byte_arrays: [
                    self.instance_type("ByteArray", "BYTE_ARRAY_TYPE"),
                    self.instance_type("TrustedByteArray", "TRUSTED_BYTE_ARRAY_TYPE"),
                ]
                .into_iter()
                .flatten()
                .collect(),
            },
            code: version.and_then(|version| self.code_layout(version)),
        })
    }
}
