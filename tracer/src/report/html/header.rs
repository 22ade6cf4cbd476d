//! The page's header: what was traced, for how long, and the counts that
//! say whether anything went wrong (stalls, drops, kernel limits).

use std::fmt::Write;

use serde_json::Value;

use super::{
    escape::html,
    fields::{duration, list, num, text},
};

pub fn render(report: &Value) -> String {
    let target = &report["target"];
    let cmdline: Vec<&str> = list(target, "cmdline")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let dropped = num(report, "dropped_events");
    let stalls = list(report, "stalls").len();
    let mode = if report["lean"].as_bool() == Some(false) {
        "every syscall"
    } else {
        "event-loop syscalls (lean)"
    };
    let mut out = format!(
        "<header><h1>tracer <span class=\"muted\">pid {} · {}</span></h1><p class=\"cmd\">{}</p><ul class=\"facts\">",
        num(target, "pid"),
        text(target, "comm"),
        html(&cmdline.join(" "))
    );
    let facts = [
        ("traced", duration(report, "duration_ns"), ""),
        ("ended", text(report, "ended_by"), ""),
        ("event loops", list(report, "loops").len().to_string(), ""),
        (
            "stalls",
            stalls.to_string(),
            if stalls > 0 { "bad" } else { "good" },
        ),
        ("blocking calls", blocking_count(report).to_string(), ""),
        (
            "dropped events",
            dropped.to_string(),
            if dropped > 0 { "bad" } else { "good" },
        ),
        ("threshold", duration(report, "threshold_ns"), ""),
        ("traced calls", mode.to_string(), ""),
    ];
    for (name, value, class) in facts {
        let _ = write!(
            out,
            "<li class=\"{class}\"><span class=\"value\">{value}</span><span class=\"name\">{name}</span></li>"
        );
    }
    out.push_str("</ul>");
    for limit in list(report, "kernel_limits")
        .iter()
        .filter_map(Value::as_str)
    {
        let _ = write!(out, "<p class=\"warning\">{}</p>", html(limit));
    }
    out.push_str("</header>");
    out
}

/// Every blocking call, those listed and those only counted in groups.
fn blocking_count(report: &Value) -> u64 {
    list(report, "blocking").len() as u64 + num(report, "blocking_omitted")
}
