//! `report.html`: the whole report in one self-contained page that opens
//! from disk with no network (docs/html.md). The stalls, tables and flame
//! graphs are rendered here from the JSON report; the page's script draws
//! the timeline from the embedded report and timeline.json, and links it to
//! the stall rows. What the script needs (the report, the timeline, the
//! stacks and the flame graphs) is packed (data.rs).

mod data;
mod escape;
mod fields;
mod flames;
mod frames;
mod header;
mod stalls;
mod table;
mod tables;

use serde_json::{Value, json};

use super::model::Report;

const PAGE: &str = include_str!("page.html");
const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("timeline.js");

/// The flame graphs the page shows, as inferno drew them.
pub struct FlameGraphs<'a> {
    pub cpu_svg: &'a str,
    pub offcpu_svg: &'a str,
}

/// The page: `report` as the JSON report renders it, `timeline` the
/// timeline.json of the same trace.
pub fn render(report: &Report, timeline: &str, flames: &FlameGraphs) -> String {
    let json = serde_json::to_value(report).unwrap_or(Value::Null);
    // Escaped once, here: fields::text would escape the name already.
    let title = format!("tracer: {} (pid {})", report.target.comm, report.target.pid);
    let cpu = flames::section(
        "cpu",
        "CPU flame graph",
        "Where the CPU time went: on-CPU samples, callers below, callees above.",
        flames.cpu_svg,
    );
    let offcpu = flames::section(
        "offcpu",
        "Off-CPU flame graph",
        "Where threads slept, in ms, under the reason for the wait (socket, disk, lock, sleep, ...).",
        flames.offcpu_svg,
    );
    let mut stacks = data::Stacks::default();
    let stall_groups = stalls::groups(&json, &mut stacks);
    let every_stall = stalls::every_stall(&json, &mut stacks);
    let tables = tables::render(&json, &mut stacks);
    let packed = data::pack(&json!({
        "report": json,
        "timeline": data::drawn_events(timeline),
        "stacks": stacks.into_html(),
        "flames": { "cpu": cpu.document, "offcpu": offcpu.document },
    }));
    fill(
        PAGE,
        &[
            ("title", &escape::html(&title)),
            ("style", STYLE),
            ("header", &header::render(&json)),
            ("stall_groups", &stall_groups),
            ("stalls", &every_stall),
            ("cpu", &cpu.section),
            ("offcpu", &offcpu.section),
            ("tables", &tables),
            ("data", &packed),
            ("script", SCRIPT),
        ],
    )
}

/// Replaces each `{{name}}` of `template` in one pass, so that a value
/// containing `{{...}}` (a function name, say) is never filled in itself.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let name = &rest[start + 2..start + len];
        out.push_str(&rest[..start]);
        match values.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
