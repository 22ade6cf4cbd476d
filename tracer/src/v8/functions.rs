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
