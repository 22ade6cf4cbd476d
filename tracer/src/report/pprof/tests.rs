//! Decodes what the pprof writer encodes (gunzip, prost) and checks it
//! against the folded stacks and the report drawn from the same trace.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Read,
};

use flate2::read::GzDecoder;
use prost::Message;

use super::proto::{Profile, Sample};
use crate::{
    analyze::{analyze, offcpu::by_reason},
    recording::sample::{self, LOOP_TID},
    report::flamegraph::cpu_folded,
    trace::{Frame, FrameKind, SampleRecord, TaskInfo, Trace},
};

fn decode(gzipped: &[u8]) -> Profile {
    let mut bytes = Vec::new();
    GzDecoder::new(gzipped)
        .read_to_end(&mut bytes)
        .expect("gzip");
    Profile::decode(bytes.as_slice()).expect("profile.proto")
}

fn string(profile: &Profile, index: i64) -> &str {
    &profile.string_table[usize::try_from(index).unwrap()]
}

/// The value of label `key` of `sample`, if it has one.
fn label<'a>(profile: &'a Profile, sample: &Sample, key: &str) -> Option<&'a str> {
    sample
        .label
        .iter()
        .find(|l| string(profile, l.key) == key)
        .map(|l| string(profile, l.str))
}

/// A sample's stack as folded stacks write it: outermost first, Python
/// frames as `function (file:line)`.
fn folded_path(profile: &Profile, sample: &Sample) -> String {
    let frames: Vec<String> = sample
        .location_id
        .iter()
        .rev()
        .map(|&id| {
            let location = &profile.location[usize::try_from(id - 1).unwrap()];
            assert_eq!(location.id, id, "location ids are their index + 1");
            let line = &location.line[0];
            let function = &profile.function[usize::try_from(line.function_id - 1).unwrap()];
            let name = string(profile, function.name);
            match (string(profile, function.filename), location.mapping_id) {
                // Python frames have a file and no binary.
                (file, 0) if !file.is_empty() => format!("{name} ({file}:{})", line.line),
                _ => name.to_string(),
            }
        })
        .collect();
    frames.join(";")
}

/// The sample trace with more CPU samples: three alike (one sample in
/// pprof), one in a kernel stack, one taken for a stall (not in profiles).
fn cpu_trace() -> Trace {
    let mut trace = sample::trace();
    let kernel = Frame {
        function: "copy_page".into(),
        file: None,
        line: None,
        column: None,
        module: None,
        kind: FrameKind::Kernel,
    };
    // The interpreter's own binary, met after libc: it is to be the
    // profile's first mapping all the same.
    let interpreter = Frame {
        function: "Py_RunMain".into(),
        file: None,
        line: None,
        column: None,
        module: Some("python3.11".into()),
        kind: FrameKind::Native,
    };
    let mut kernel_stack = trace.stacks[1].clone();
    kernel_stack.insert(0, kernel);
    kernel_stack.push(interpreter);
    trace.stacks.push(kernel_stack);
    let sample = |stack, for_stall| SampleRecord {
        pid: LOOP_TID,
        tid: LOOP_TID,
        time_ns: 1_300_000_000,
        for_stall,
        stack,
        task: None,
    };
    let kernel_stack = trace.stacks.len() as u32 - 1;
    trace.samples.extend([
        sample(1, false),
        sample(1, false),
        sample(kernel_stack, false),
        sample(kernel_stack, true),
    ]);
    // One sample ran in an asyncio Task.
    trace.samples[0].task = Some(TaskInfo {
        name: "fetch-user-42".into(),
        coro: "handle".into(),
        awaited_by: Vec::new(),
    });
    trace
}

#[test]
fn cpu_profile_carries_the_folded_stacks() {
    let trace = cpu_trace();
    let profile = decode(&super::cpu(&trace));
    let types: Vec<(&str, &str)> = profile
        .sample_type
        .iter()
        .map(|t| (string(&profile, t.r#type), string(&profile, t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    let period = 1_000_000_000 / 99;
    assert_eq!(profile.period, period);
    let period_type = profile.period_type.as_ref().unwrap();
    assert_eq!(string(&profile, period_type.r#type), "cpu");
    assert_eq!(profile.time_nanos, 1_700_000_000_000_000_000);
    assert_eq!(profile.duration_nanos, 2_000_000_000);
    // The same stacks and counts as cpu.folded.
    let mut folded: BTreeMap<String, i64> = BTreeMap::new();
    for sample in &profile.sample {
        assert_eq!(sample.value[1], sample.value[0] * period);
        assert_eq!(label(&profile, sample, "thread"), Some("python3/4242"));
        assert_eq!(label(&profile, sample, "loop"), Some("yes"));
        *folded.entry(folded_path(&profile, sample)).or_default() += sample.value[0];
    }
    let expected: String = folded
        .iter()
        .map(|(path, count)| format!("{path} {count}\n"))
        .collect();
    assert_eq!(expected, cpu_folded(&trace));
    let tasks: Vec<Option<&str>> = profile
        .sample
        .iter()
        .map(|sample| label(&profile, sample, "task"))
        .collect();
    assert_eq!(
        tasks
            .iter()
            .filter(|t| **t == Some("fetch-user-42"))
            .count(),
        1,
        "{tasks:?}"
    );
    // Samples of one stack and labels are one pprof sample: of the three
    // of one stack and thread, the one in a task stands apart.
    assert_eq!(profile.sample.len(), 3);
    assert!(profile.sample.iter().any(|s| s.value == [2, 2 * period]));
    // A kernel frame: marked in its name, the bare symbol as system name,
    // in the kernel's pseudo binary.
    let copy_page = profile
        .function
        .iter()
        .find(|f| string(&profile, f.name) == "copy_page_[k]")
        .expect("kernel function");
    assert_eq!(string(&profile, copy_page.system_name), "copy_page");
    let kernel = profile
        .mapping
        .iter()
        .find(|m| string(&profile, m.filename) == "[kernel.kallsyms]")
        .expect("kernel mapping");
    assert!(kernel.has_functions);
    let native = profile
        .mapping
        .iter()
        .find(|m| string(&profile, m.filename) == "libc.so.6")
        .expect("libc mapping");
    assert!(native.has_functions && native.has_filenames && native.has_line_numbers);
    // The program's binary first; each location still in its own binary.
    assert_eq!(string(&profile, profile.mapping[0].filename), "python3.11");
    for (index, mapping) in profile.mapping.iter().enumerate() {
        assert_eq!(mapping.id, index as u64 + 1);
    }
    let binary_of = |function: &str| {
        let id = profile
            .function
            .iter()
            .find(|f| string(&profile, f.name) == function)
            .expect(function)
            .id;
        let location = profile
            .location
            .iter()
            .find(|l| l.line[0].function_id == id)
            .expect("location");
        string(
            &profile,
            profile.mapping[location.mapping_id as usize - 1].filename,
        )
    };
    assert_eq!(binary_of("Py_RunMain"), "python3.11");
    assert_eq!(binary_of("long_mul"), "libc.so.6");
    assert_eq!(binary_of("copy_page_[k]"), "[kernel.kallsyms]");
}

#[test]
fn tables_hold_each_string_function_and_location_once() {
    let trace = cpu_trace();
    for gzipped in [
        super::cpu(&trace),
        super::offcpu(&trace, &analyze(&trace).off_cpu),
    ] {
        let profile = decode(&gzipped);
        assert_eq!(profile.string_table[0], "");
        let strings: HashSet<&String> = profile.string_table.iter().collect();
        assert_eq!(strings.len(), profile.string_table.len());
        let functions: HashSet<(i64, i64, i64)> = profile
            .function
            .iter()
            .map(|f| (f.name, f.system_name, f.filename))
            .collect();
        assert_eq!(functions.len(), profile.function.len());
        let locations: HashSet<(u64, u64, i64)> = profile
            .location
            .iter()
            .map(|l| (l.mapping_id, l.line[0].function_id, l.line[0].line))
            .collect();
        assert_eq!(locations.len(), profile.location.len());
        for (index, location) in profile.location.iter().enumerate() {
            assert_eq!(location.id, index as u64 + 1);
            assert_eq!(location.line.len(), 1);
        }
        for sample in &profile.sample {
            assert_eq!(sample.value.len(), profile.sample_type.len());
        }
    }
    // `handle` (app.py:66) is in both stacks of the CPU profile: one
    // function, one location; `_PyEval_EvalFrameDefault` likewise.
    let profile = decode(&super::cpu(&trace));
    let handle: Vec<_> = profile
        .function
        .iter()
        .filter(|f| string(&profile, f.name) == "handle")
        .collect();
    assert_eq!(handle.len(), 1);
    assert_eq!(string(&profile, handle[0].filename), "/srv/app.py");
    let at_66 = profile
        .location
        .iter()
        .filter(|l| l.line[0].function_id == handle[0].id && l.line[0].line == 66)
        .count();
    assert_eq!(at_66, 1);
}

#[test]
fn offcpu_profile_sums_to_the_report_by_reason() {
    let trace = sample::trace();
    let report = analyze(&trace);
    let profile = decode(&super::offcpu(&trace, &report.off_cpu));
    let types: Vec<(&str, &str)> = profile
        .sample_type
        .iter()
        .map(|t| (string(&profile, t.r#type), string(&profile, t.unit)))
        .collect();
    assert_eq!(types, [("waits", "count"), ("offcpu", "nanoseconds")]);
    let mut by_label: HashMap<String, u64> = HashMap::new();
    let mut by_root: HashMap<String, u64> = HashMap::new();
    for sample in &profile.sample {
        let reason = label(&profile, sample, "wait_reason").expect("wait_reason");
        let ns = u64::try_from(sample.value[1]).unwrap();
        *by_label.entry(reason.to_string()).or_default() += ns;
        let root = folded_path(&profile, sample);
        let root = root.split(';').next().unwrap().to_string();
        *by_root.entry(root).or_default() += ns;
        // A thread is named where the report has one.
        if let Some(thread) = label(&profile, sample, "thread") {
            assert!(thread.ends_with(&format!("/{LOOP_TID}")) || thread.ends_with("/4250"));
        }
    }
    let expected: HashMap<String, u64> = by_reason(&report.off_cpu)
        .into_iter()
        .filter(|(_, ns)| *ns > 0)
        .map(|(reason, ns)| (reason.name().to_string(), ns))
        .collect();
    assert!(expected.len() >= 3, "{expected:?}");
    assert_eq!(by_label, expected);
    assert_eq!(by_root, expected);
    let waits: i64 = profile.sample.iter().map(|s| s.value[0]).sum();
    let rows: u64 = report.off_cpu.iter().map(|r| r.count).sum();
    assert_eq!(u64::try_from(waits).unwrap(), rows);
    // The loop's idle time is the loop thread's, labelled as a loop.
    let idle = profile
        .sample
        .iter()
        .find(|s| label(&profile, s, "wait_reason") == Some("idle"))
        .expect("idle");
    assert_eq!(label(&profile, idle, "loop"), Some("yes"));
    assert_eq!(label(&profile, idle, "thread"), Some("python3/4242"));
}

#[test]
fn an_empty_trace_gives_valid_empty_profiles() {
    let trace = Trace::empty(crate::trace::TargetInfo {
        pid: 1,
        comm: "x".into(),
        cmdline: vec![],
    });
    let cpu = decode(&super::cpu(&trace));
    assert!(cpu.sample.is_empty());
    assert_eq!(cpu.period, 0);
    let offcpu = decode(&super::offcpu(&trace, &[]));
    assert!(offcpu.sample.is_empty() && offcpu.location.is_empty());
}
