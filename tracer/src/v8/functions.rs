//! Functions and their scripts: a SharedFunctionInfo's name, its Script's
//! name and line ends.

use super::{
    heap::{Heap, MAX_SOURCE_UNITS, smi, untag},
    positions::line_ends,
};

/// Slots of a ScopeInfo searched for the function's name.
const SCOPE_INFO_SLOTS: u64 = 16;
/// Lines of a script beyond this are not read.
const MAX_LINES: u64 = 1 << 20;

/// A script: its name (the file) and where its lines end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    pub name: Option<String>,
    /// None where neither V8 has them nor the source is readable (node's
    /// own modules keep their source outside the heap).
    pub line_ends: Option<Vec<u32>>,
}

/// A function's name (empty if anonymous) and its start offset in its
/// script.
pub struct FunctionInfo {
    pub name: String,
    pub start: Option<u32>,
}

impl Heap<'_> {
    /// The SharedFunctionInfo of the JSFunction `function` points to.
    /// A function read after the GC moved it is read where it went (the
    /// young generation is scavenged every few milliseconds in a busy
    /// process, and the stack is read tens of milliseconds after it).
    pub fn shared_of(&self, function: u64) -> Option<u64> {
        let types = &self.layout.types;
        let function = self.forwarded(function).unwrap_or(function);
        let function = self.typed(function, |t| types.is_js_function(t))?;
        let shared = self.field(function, self.layout.function_shared)?;
        self.typed(shared, |t| t == types.shared_function_info)
            .map(|_| shared)
    }

    /// A function's name and where it starts: the SharedFunctionInfo holds
    /// the name as a string until the function is compiled, then both in
    /// its ScopeInfo, whose layout changes with every V8 version and is not
    /// exported. As the OpenTelemetry profiler reads it: the first string
    /// after the context locals is the name (the function variable's, else
    /// the inferred one), the first two Smis after it, start before end,
    /// the function's start and end offsets in its script.
    pub fn function_info(&self, shared: u64) -> Option<FunctionInfo> {
        let address = untag(shared)?;
        let name = self.field(address, self.layout.shared_name_or_scope_info)?;
        if self.is_string(name) {
            return Some(FunctionInfo {
                name: self.name(name)?,
                start: None,
            });
        }
        let scope = self.typed(name, |t| t == self.layout.types.scope_info)?;
        let slots = self
            .memory
            .read_vec(scope + self.layout.map + 8, (SCOPE_INFO_SLOTS * 8) as usize)?;
        let slots: Vec<u64> = slots
            .chunks_exact(8)
            .filter_map(|c| Some(u64::from_le_bytes(c.try_into().ok()?)))
            .collect();
        let locals = slots.get(usize::try_from(self.layout.scope_info_context_locals).ok()?);
        let locals = usize::try_from(smi(*locals?)?).ok()?;
        let first = usize::try_from(self.layout.scope_info_first_vars).ok()? + 2 * locals;
        let after_locals = slots.get(first..).unwrap_or_default();
        let Some(name_index) = after_locals
            .iter()
            .position(|&value| untag(value).is_some() && self.is_string(value))
        else {
            return Some(FunctionInfo {
                name: String::new(),
                start: None,
            });
        };
        let start = after_locals[name_index + 1..]
            .windows(2)
            .find_map(|pair| {
                let (start, end) = (smi(pair[0])?, smi(pair[1])?);
                (0 <= start && start < end).then_some(start)
            })
            .and_then(|start| u32::try_from(start).ok());
        Some(FunctionInfo {
            name: self.name(after_locals[name_index])?,
            start,
        })
    }

    /// The Script of a SharedFunctionInfo (none for V8's own code without
    /// one), as a tagged pointer.
    pub fn script_of(&self, shared: u64) -> Option<u64> {
        let script = self.field(untag(shared)?, self.layout.shared_script)?;
        self.typed(script, |t| t == self.layout.types.script)
            .map(|_| script)
    }

    /// The identity of a script's contents: its name and source objects.
    /// A cached [`ScriptInfo`] is used only while both are unchanged.
    pub fn script_key(&self, script: u64) -> Option<(u64, u64, u64)> {
        let address = untag(script)?;
        let name = self.field(address, self.layout.script_name)?;
        let source = self.field(address, self.layout.script_source)?;
        Some((script, name, source))
    }

    /// The script's name and line ends: V8's own if it has computed them,
    /// else counted in the source.
    pub fn script_info(&self, script: u64) -> Option<ScriptInfo> {
        let address = untag(script)?;
        let name_field = self.field(address, self.layout.script_name)?;
        let name = self
            .is_string(name_field)
            .then(|| self.name(name_field))
            .flatten();
        let ends_field = self.field(address, self.layout.script_line_ends)?;
        let line_ends = match self.smi_array(ends_field, MAX_LINES) {
            Some(ends) => ends
                .into_iter()
                .map(|end| u32::try_from(end).ok())
                .collect(),
            None => {
                let source = self.field(address, self.layout.script_source)?;
                self.string_units(source, MAX_SOURCE_UNITS)
                    .map(|units| line_ends(&units))
            }
        };
        Some(ScriptInfo { name, line_ends })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        procfs::memory::ProcessMemory,
        v8::constants::{Layout, StringLayout, Types},
    };

    const JS_FUNCTION: u16 = 1000;
    const SHARED_FUNCTION_INFO: u16 = 2000;
    /// Field offsets of the made-up layout.
    const INSTANCE_TYPE: u64 = 12;
    const SHARED: u64 = 24;

    fn layout() -> Layout {
        Layout {
            fp_context: 0,
            fp_function: 0,
            fp_bytecode_array: 0,
            fp_bytecode_offset: 0,
            map: 0,
            map_instance_type: INSTANCE_TYPE,
            function_shared: SHARED,
            shared_name_or_scope_info: 0,
            shared_script: 0,
            script_name: 0,
            script_source: 0,
            script_line_ends: 0,
            array_length: 0,
            array_data: 0,
            bytecode_data: 0,
            bytecode_source_positions: 0,
            scope_info_first_vars: 0,
            scope_info_context_locals: 0,
            strings: StringLayout {
                length: 0,
                seq_chars: 0,
                cons_first: 0,
                cons_second: 0,
                thin_actual: 0,
                sliced_parent: 0,
                sliced_offset: 0,
                first_nonstring_type: 0,
                representation_mask: 0,
                encoding_mask: 0,
                one_byte_tag: 0,
                seq_tag: 0,
                cons_tag: 0,
                sliced_tag: 0,
                thin_tag: 0,
            },
            types: Types {
                js_function: JS_FUNCTION,
                shared_function_info: SHARED_FUNCTION_INFO,
                script: 0,
                bytecode_array: 0,
                scope_info: 0,
                fixed_array: 0,
                byte_arrays: Vec::new(),
            },
            code: None,
        }
    }

    /// Objects of 4 words each in this process's memory, read back through
    /// /proc/self/mem as the tracer reads a target's: two maps, a
    /// SharedFunctionInfo, a JSFunction, its old copy that the scavenger
    /// left behind (map word: the new address, untagged), and a slot
    /// reused by an object of another type.
    #[test]
    fn a_moved_function_is_read_where_it_went() {
        let mut words = vec![0u64; 6 * 4];
        let base = words.as_ptr() as u64;
        let object = |index: u64| base + 32 * index;
        let tagged = |index: u64| object(index) + 1;
        let with_type = |instance_type: u16| u64::from(instance_type) << 32;
        let mut set = |index: usize, slot: usize, value: u64| words[4 * index + slot] = value;
        set(0, 1, with_type(JS_FUNCTION));
        set(1, 1, with_type(SHARED_FUNCTION_INFO));
        set(2, 0, tagged(1));
        set(3, 0, tagged(0));
        set(3, 3, tagged(2));
        set(4, 0, object(3));
        set(5, 0, tagged(1));
        // Stores the compiler must keep: only the reads below see them.
        let words = std::hint::black_box(words);
        let memory = ProcessMemory::open(std::process::id()).expect("/proc/self/mem");
        let layout = layout();
        let heap = Heap {
            memory: &memory,
            layout: &layout,
        };
        assert_eq!(heap.shared_of(tagged(3)), Some(tagged(2)));
        assert_eq!(heap.forwarded(tagged(4)), Some(tagged(3)));
        assert_eq!(heap.shared_of(tagged(4)), Some(tagged(2)));
        // Not forwarded, and not a function: no name.
        assert_eq!(heap.forwarded(tagged(5)), None);
        assert_eq!(heap.shared_of(tagged(5)), None);
        drop(words);
    }
}
