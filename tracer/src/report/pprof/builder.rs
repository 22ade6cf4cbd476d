//! Builds a [`Profile`] the way profile.proto wants it: each string once in
//! the string table, each function (name, file) and location (function,
//! line, binary) once, and samples with the same stack and labels summed
//! into one. A profile of a long trace is then about as small as its folded
//! stacks.

use std::collections::HashMap;

use super::proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
use crate::{
    analyze::cpu::frame_label,
    trace::{Frame, FrameKind},
};

/// The pseudo binary of kernel frames, as perf and pprof name it (pprof
/// never tries to read symbols from a mapping whose name starts with `[`).
const KERNEL_MAPPING: &str = "[kernel.kallsyms]";

/// A sample's identity for summing: its stack and its labels.
type SampleKey = (Vec<u64>, Vec<(i64, i64)>);

/// What the profile says about itself beside its samples.
pub struct Meta<'a> {
    pub time_nanos: i64,
    pub duration_nanos: i64,
    /// The sampling period: (type, unit) and its length.
    pub period: Option<((&'a str, &'a str), i64)>,
    pub comments: Vec<String>,
}

pub struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    sample_types: Vec<ValueType>,
    functions: Vec<Function>,
    function_ids: HashMap<(i64, i64, i64), u64>,
    mappings: Vec<Mapping>,
    mapping_ids: HashMap<i64, u64>,
    locations: Vec<Location>,
    location_ids: HashMap<(u64, u64, i64, i64), u64>,
    samples: Vec<Sample>,
    sample_ids: HashMap<SampleKey, usize>,
}

impl Builder {
    /// A profile whose samples carry one value per `(type, unit)`.
    pub fn new(sample_types: &[(&str, &str)]) -> Self {
        let mut builder = Self {
            // Index 0 is the empty string, as profile.proto requires.
            strings: vec![String::new()],
            string_ids: HashMap::from([(String::new(), 0)]),
            sample_types: Vec::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            mappings: Vec::new(),
            mapping_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            samples: Vec::new(),
            sample_ids: HashMap::new(),
        };
        builder.sample_types = sample_types
            .iter()
            .map(|(kind, unit)| builder.value_type(kind, unit))
            .collect();
        builder
    }

    /// The string table index of `s`.
    pub fn string(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), id);
        id
    }

    fn value_type(&mut self, kind: &str, unit: &str) -> ValueType {
        ValueType {
            r#type: self.string(kind),
            unit: self.string(unit),
        }
    }

    /// The location of a frame of a recorded stack.
    pub fn frame(&mut self, frame: &Frame) -> u64 {
        // The name as the folded stacks and the report's top list show it
        // (`_[k]` marks kernel code), without the file and line of Python
        // frames, which have fields of their own here.
        let name = match frame.kind {
            FrameKind::Python | FrameKind::Js => frame.function.clone(),
            FrameKind::Native | FrameKind::Kernel | FrameKind::Truncated => frame_label(frame),
        };
        let binary = match frame.kind {
            FrameKind::Kernel => Some(KERNEL_MAPPING),
            FrameKind::Native => frame.module.as_deref(),
            FrameKind::Python | FrameKind::Js | FrameKind::Truncated => None,
        };
        let line = frame.line.map_or(0, i64::from);
        let column = frame.column.map_or(0, i64::from);
        let function = self.function(&name, &frame.function, frame.file.as_deref());
        let mapping = binary.map_or(0, |b| self.mapping(b, frame.file.is_some(), line != 0));
        self.location(function, (line, column), mapping)
    }

    /// The location of a frame tracer adds (a wait reason, `[no stack]`):
    /// a function of that name with no file.
    pub fn pseudo_frame(&mut self, name: &str) -> u64 {
        let function = self.function(name, name, None);
        self.location(function, (0, 0), 0)
    }

    fn function(&mut self, name: &str, system_name: &str, file: Option<&str>) -> u64 {
        let key = (
            self.string(name),
            self.string(system_name),
            self.string(file.unwrap_or("")),
        );
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        self.functions.push(Function {
            id,
            name: key.0,
            system_name: key.1,
            filename: key.2,
            start_line: 0,
        });
        self.function_ids.insert(key, id);
        id
    }

    /// The binary `file`; it says it has file names or line numbers as soon
    /// as one of its frames has them.
    fn mapping(&mut self, file: &str, has_files: bool, has_lines: bool) -> u64 {
        let filename = self.string(file);
        let id = match self.mapping_ids.get(&filename) {
            Some(&id) => id,
            None => {
                let id = self.mappings.len() as u64 + 1;
                self.mappings.push(Mapping {
                    id,
                    filename,
                    // Every frame is named already (and has no address):
                    // readers must not try to symbolize.
                    has_functions: true,
                    ..Mapping::default()
                });
                self.mapping_ids.insert(filename, id);
                id
            }
        };
        if let Some(mapping) = self.mappings.get_mut(id as usize - 1) {
            mapping.has_filenames |= has_files;
            mapping.has_line_numbers |= has_lines;
        }
        id
    }

    /// The location of `function` at (line, column), 0 where unknown.
    fn location(&mut self, function: u64, (line, column): (i64, i64), mapping: u64) -> u64 {
        let key = (function, mapping, line, column);
        if let Some(&id) = self.location_ids.get(&key) {
            return id;
        }
        let id = self.locations.len() as u64 + 1;
        self.locations.push(Location {
            id,
            mapping_id: mapping,
            line: vec![Line {
                function_id: function,
                line,
                column,
            }],
            ..Location::default()
        });
        self.location_ids.insert(key, id);
        id
    }

    /// Readers take the first mapping for the program's own binary (`go
    /// tool pprof` prints it as `File:`): put the first that is neither a
    /// shared library nor a pseudo binary like the kernel's there.
    fn main_binary_first(&mut self) {
        let is_main = |mapping: &Mapping| {
            let file = self
                .strings
                .get(mapping.filename as usize)
                .map_or("", String::as_str);
            !file.is_empty() && !file.starts_with('[') && !file.contains(".so")
        };
        let Some(main) = self.mappings.iter().position(is_main) else {
            return;
        };
        if main == 0 {
            return;
        }
        // Swap the ids with the places: mapping i keeps id i + 1.
        let (first, main_id) = (1, main as u64 + 1);
        self.mappings.swap(0, main);
        self.mappings[0].id = first;
        self.mappings[main].id = main_id;
        for location in &mut self.locations {
            if location.mapping_id == first {
                location.mapping_id = main_id;
            } else if location.mapping_id == main_id {
                location.mapping_id = first;
            }
        }
    }

    /// Adds `values` (one per sample type) at `stack` (leaf first) with
    /// string labels (key, value); the same stack and labels again add up.
    pub fn add(&mut self, stack: Vec<u64>, labels: &[(&str, &str)], values: &[i64]) {
        let mut label_ids: Vec<(i64, i64)> = labels
            .iter()
            .map(|(key, value)| (self.string(key), self.string(value)))
            .collect();
        label_ids.sort_unstable();
        let key = (stack, label_ids);
        if let Some(&index) = self.sample_ids.get(&key)
            && let Some(sample) = self.samples.get_mut(index)
        {
            for (sum, value) in sample.value.iter_mut().zip(values) {
                *sum += value;
            }
            return;
        }
        let mut values = values.to_vec();
        values.resize(self.sample_types.len(), 0);
        self.samples.push(Sample {
            location_id: key.0.clone(),
            value: values,
            label: key
                .1
                .iter()
                .map(|&(key, str)| Label {
                    key,
                    str,
                    ..Label::default()
                })
                .collect(),
        });
        self.sample_ids.insert(key, self.samples.len() - 1);
    }

    pub fn finish(mut self, meta: Meta) -> Profile {
        self.main_binary_first();
        let period_type = meta
            .period
            .map(|((kind, unit), _)| self.value_type(kind, unit));
        let comment = meta.comments.iter().map(|c| self.string(c)).collect();
        Profile {
            sample_type: self.sample_types,
            sample: self.samples,
            mapping: self.mappings,
            location: self.locations,
            function: self.functions,
            string_table: self.strings,
            time_nanos: meta.time_nanos,
            duration_nanos: meta.duration_nanos,
            period_type,
            period: meta.period.map_or(0, |(_, period)| period),
            comment,
            ..Profile::default()
        }
    }
}
