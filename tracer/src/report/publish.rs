//! Everything a finished trace turns into: the text report on the terminal,
//! and the files of `--json` and `--output DIR`. Used alike by a live trace
//! and by `tracer report` on a recording.

use std::{fmt::Write, path::PathBuf};

use crate::{
    analyze::analyze,
    output::{OutputError, Outputs},
    report::{flamegraph, html, model::Report, pprof, text, timeline, to_json},
    trace::Trace,
};

/// One file of `--output DIR`.
pub struct OutputFile {
    pub name: &'static str,
    /// Text for most files; the pprof profiles are binary.
    pub contents: Vec<u8>,
    /// What it is and how to open it, for the report's list of files.
    pub about: &'static str,
}

/// The profiles and the timeline, which report.html shows too.
struct Pictures {
    cpu_folded: String,
    offcpu_folded: String,
    cpu_svg: String,
    offcpu_svg: String,
    timeline: String,
}

impl Pictures {
    fn draw(trace: &Trace, report: &Report) -> Self {
        let cpu_folded = flamegraph::cpu_folded(trace);
        let offcpu_folded = flamegraph::offcpu_folded(&report.off_cpu);
        Self {
            cpu_svg: flamegraph::svg(&cpu_folded, "CPU (on-CPU samples)", "samples"),
            offcpu_svg: flamegraph::svg(&offcpu_folded, "Off-CPU time by wait reason", "ms"),
            timeline: timeline::render(trace, report),
            cpu_folded,
            offcpu_folded,
        }
    }

    fn html(&self, report: &Report) -> String {
        let flames = html::FlameGraphs {
            cpu_svg: &self.cpu_svg,
            offcpu_svg: &self.offcpu_svg,
        };
        html::render(report, &self.timeline, &flames)
    }
}

/// The files of `--output DIR` besides report.txt (which lists them).
fn dir_files(trace: &Trace, report: &Report, pictures: Pictures, html: String) -> Vec<OutputFile> {
    vec![
        OutputFile {
            name: "report.html",
            contents: html.into(),
            about: "the whole report as one page: open in a browser (docs/html.md)",
        },
        OutputFile {
            name: "report.json",
            contents: to_json(report).into(),
            about: "the report for programs (format: docs/json.md)",
        },
        OutputFile {
            name: "timeline.json",
            contents: pictures.timeline.into(),
            about: "the timeline: open in ui.perfetto.dev or chrome://tracing (docs/timeline.md)",
        },
        OutputFile {
            name: "cpu.folded",
            contents: pictures.cpu_folded.into(),
            about: "CPU profile as folded stacks (inferno, flamegraph.pl, speedscope)",
        },
        OutputFile {
            name: "cpu.svg",
            contents: pictures.cpu_svg.into(),
            about: "CPU flame graph: open in a browser",
        },
        OutputFile {
            name: "offcpu.folded",
            contents: pictures.offcpu_folded.into(),
            about: "off-CPU time (ms) as folded stacks, wait reason first",
        },
        OutputFile {
            name: "offcpu.svg",
            contents: pictures.offcpu_svg.into(),
            about: "off-CPU flame graph: open in a browser",
        },
        OutputFile {
            name: "cpu.pb.gz",
            contents: pprof::cpu(trace),
            about: "CPU profile for go tool pprof, Pyroscope, Parca (docs/pprof.md)",
        },
        OutputFile {
            name: "offcpu.pb.gz",
            contents: pprof::offcpu(trace, &report.off_cpu),
            about: "off-CPU profile (ns, by wait reason) for the same tools",
        },
    ]
}

/// Renders and writes everything; prints the text report unless `quiet`.
pub fn publish(trace: &Trace, outputs: &Outputs, quiet: bool) -> Result<(), OutputError> {
    let report = analyze(trace);
    let json = to_json(&report);
    let mut html = None;
    let mut files = Vec::new();
    if outputs.dir.is_some() || outputs.html.is_some() {
        let pictures = Pictures::draw(trace, &report);
        let page = pictures.html(&report);
        if outputs.html.is_some() {
            html = Some(page.clone());
        }
        if outputs.dir.is_some() {
            files = dir_files(trace, &report, pictures, page);
        }
    }
    let mut text = text::render(&report, outputs.stalls_by);
    let listed = file_list(outputs, &files);
    text.push_str(&listed);
    files.push(OutputFile {
        name: "report.txt",
        contents: text.clone().into(),
        about: "this report",
    });
    let named: Vec<(&str, &[u8])> = files
        .iter()
        .map(|f| (f.name, f.contents.as_slice()))
        .collect();
    outputs.write(&named, &json, html.as_deref())?;
    if !quiet {
        print!("{text}");
    }
    Ok(())
}

/// The "FILES" section: where each output went and how to open it.
fn file_list(outputs: &Outputs, files: &[OutputFile]) -> String {
    let mut entries: Vec<(PathBuf, &str)> = Vec::new();
    if let Some(json) = &outputs.json {
        entries.push((
            json.clone(),
            "the report for programs (format: docs/json.md)",
        ));
    }
    if let Some(html) = &outputs.html {
        entries.push((
            html.clone(),
            "the whole report as one page: open in a browser (docs/html.md)",
        ));
    }
    if let Some(dir) = &outputs.dir {
        entries.push((dir.join("report.txt"), "this report"));
        entries.extend(files.iter().map(|f| (dir.join(f.name), f.about)));
    }
    let mut out = String::new();
    if entries.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nFILES");
    let width = entries
        .iter()
        .map(|(p, _)| p.display().to_string().len())
        .max()
        .unwrap_or(0);
    for (path, about) in entries {
        let _ = writeln!(out, "  {:<width$}  {about}", path.display().to_string());
    }
    out
}
