//! Rendering a [`model::Report`]: text for people, JSON for programs, and
//! the files of `--output` (HTML, flame graphs, timeline, pprof).

pub mod flamegraph;
pub mod html;
pub mod model;
pub mod pprof;
pub mod publish;
pub mod text;
pub mod timeline;

/// The JSON report, pretty-printed.
pub fn to_json(report: &model::Report) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
