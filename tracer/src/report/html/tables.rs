//! The rest of the JSON report as tables: event loops, blocking calls,
//! syscalls, off-CPU time, run queue, CPU, processes and drops.

use serde_json::Value;

use super::{
    data::Stacks,
    escape::html,
    fields::{duration, list, num, text},
    frames,
    table::{self, Column, Row},
};

/// A section with a heading and a table, or "none".
fn table(id: &str, title: &str, columns: &[Column], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return format!(
            "<section id=\"{id}\"><h2>{title}</h2><p class=\"muted\">none</p></section>"
        );
    }
    let rows = rows.into_iter().map(Row::from).collect();
    format!(
        "<section id=\"{id}\"><h2>{title}</h2>{}</section>",
        table::render("", columns, rows)
    )
}

pub fn render(report: &Value, stacks: &mut Stacks) -> String {
    [
        loops(report),
        blocking(report, stacks),
        syscalls(report),
        off_cpu(report, stacks),
        gil_waits(report, stacks),
        runqueue(report),
        cpu_threads(report),
        cpu_top(report),
        processes(report),
        drops(report),
    ]
    .concat()
}

fn optional(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::Null => "<span class=\"muted\">–</span>".into(),
        Value::String(s) => html(s),
        other => html(&other.to_string()),
    }
}

fn loops(report: &Value) -> String {
    let rows = list(report, "loops")
        .iter()
        .map(|l| {
            vec![
                format!(
                    "{} <span class=\"muted\">{}</span>",
                    text(l, "comm"),
                    num(l, "tid")
                ),
                num(l, "iterations").to_string(),
                format!("{:.0} %", l["utilization"].as_f64().unwrap_or(0.0) * 100.0),
                duration(l, "lag_p50_ns"),
                duration(l, "lag_p99_ns"),
                duration(l, "lag_max_ns"),
            ]
        })
        .collect();
    let columns = [
        ("thread", false),
        ("iterations", true),
        ("busy", true),
        ("iteration p50", true),
        ("p99", true),
        ("max", true),
    ];
    table("loops", "Event loops", &columns, rows)
}

fn blocking(report: &Value, stacks: &mut Stacks) -> String {
    let rows = list(report, "blocking_groups")
        .iter()
        .map(|g| {
            let on_loop = if g["on_loop_thread"].as_bool() == Some(true) {
                "<span class=\"tag bad\">loop</span> "
            } else {
                ""
            };
            vec![
                format!("{on_loop}{}", text(g, "syscall")),
                optional(g, "target"),
                num(g, "count").to_string(),
                duration(g, "total_ns"),
                duration(g, "max_ns"),
                frames::of(g, stacks),
            ]
        })
        .collect();
    let columns = [
        ("syscall", false),
        ("on", false),
        ("calls", true),
        ("total", true),
        ("max", true),
        ("code", false),
    ];
    table("blocking", "Blocking calls", &columns, rows)
}

fn syscalls(report: &Value) -> String {
    let rows = list(report, "syscalls")
        .iter()
        .map(|s| {
            vec![
                text(s, "name"),
                num(s, "count").to_string(),
                num(s, "errors").to_string(),
                duration(s, "total_ns"),
                duration(s, "avg_ns"),
                duration(s, "p50_ns"),
                duration(s, "p99_ns"),
                duration(s, "max_ns"),
            ]
        })
        .collect();
    let columns = [
        ("syscall", false),
        ("calls", true),
        ("errors", true),
        ("total", true),
        ("avg", true),
        ("p50", true),
        ("p99", true),
        ("max", true),
    ];
    table("syscalls", "Syscalls", &columns, rows)
}

fn off_cpu(report: &Value, stacks: &mut Stacks) -> String {
    let rows = list(report, "off_cpu")
        .iter()
        .map(|o| {
            let thread = match o["tid"].as_u64() {
                Some(tid) => format!("{} <span class=\"muted\">{tid}</span>", text(o, "comm")),
                None => "<span class=\"muted\">short waits, all threads</span>".into(),
            };
            vec![
                format!(
                    "<span class=\"badge reason {}\">{}</span>",
                    reason_class(o),
                    text(o, "reason")
                ),
                thread,
                optional(o, "syscall"),
                optional(o, "target"),
                duration(o, "total_ns"),
                num(o, "count").to_string(),
                frames::of(o, stacks),
            ]
        })
        .collect();
    let columns = [
        ("reason", false),
        ("thread", false),
        ("syscall", false),
        ("on", false),
        ("total", true),
        ("waits", true),
        ("code", false),
    ];
    table("off-cpu", "Off-CPU time by reason", &columns, rows)
}

/// Idle time (a loop waiting for work) is no problem: it is drawn grey.
fn reason_class(row: &Value) -> &'static str {
    if row["reason"] == "idle" { "idle" } else { "" }
}

/// Who waited for the GIL, and who held it meanwhile (where it ran).
fn gil_waits(report: &Value, stacks: &mut Stacks) -> String {
    let thread = |v: &Value| match v["tid"].as_u64() {
        Some(tid) => format!("{} <span class=\"muted\">{tid}</span>", text(v, "comm")),
        None => "<span class=\"muted\">unknown</span>".into(),
    };
    let mut rows = Vec::new();
    for waiter in list(report, "gil_waits") {
        for holder in list(waiter, "holders") {
            rows.push(vec![
                thread(waiter),
                thread(holder),
                duration(holder, "total_ns"),
                num(holder, "count").to_string(),
                frames::of(holder, stacks),
            ]);
        }
    }
    let columns = [
        ("waiting thread", false),
        ("GIL held by", false),
        ("total", true),
        ("waits", true),
        ("holder's code", false),
    ];
    table("gil", "GIL waits (Python)", &columns, rows)
}

fn runqueue(report: &Value) -> String {
    let q = &report["runqueue"];
    let rows = vec![vec![
        num(q, "count").to_string(),
        duration(q, "total_ns"),
        duration(q, "p50_ns"),
        duration(q, "p99_ns"),
        duration(q, "max_ns"),
    ]];
    let columns = [
        ("waits", true),
        ("total", true),
        ("p50", true),
        ("p99", true),
        ("max", true),
    ];
    table(
        "runqueue",
        "Run queue (runnable, waiting for a CPU)",
        &columns,
        rows,
    )
}

fn cpu_threads(report: &Value) -> String {
    let cpu = &report["cpu"];
    let rows = list(cpu, "threads")
        .iter()
        .map(|t| {
            vec![
                format!(
                    "{} <span class=\"muted\">{}</span>",
                    text(t, "comm"),
                    num(t, "tid")
                ),
                duration(t, "cpu_ns"),
                format!("{:.1} %", t["core_percent"].as_f64().unwrap_or(0.0)),
                num(t, "samples").to_string(),
            ]
        })
        .collect();
    let columns = [
        ("thread", false),
        ("on CPU", true),
        ("of a core", true),
        ("samples", true),
    ];
    let title = format!("CPU by thread ({} Hz sampling)", num(cpu, "hz"));
    table("cpu-threads", &title, &columns, rows)
}

fn cpu_top(report: &Value) -> String {
    let rows = list(&report["cpu"], "top")
        .iter()
        .map(|f| {
            vec![
                text(f, "function"),
                num(f, "self").to_string(),
                num(f, "total").to_string(),
            ]
        })
        .collect();
    let columns = [("function", false), ("self", true), ("total", true)];
    table("cpu-top", "Hottest functions (samples)", &columns, rows)
}

fn processes(report: &Value) -> String {
    let rows = list(report, "processes")
        .iter()
        .map(|p| {
            let cmdline: Vec<&str> = list(p, "cmdline")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            vec![
                num(p, "pid").to_string(),
                optional(p, "parent"),
                text(p, "comm"),
                html(&cmdline.join(" ")),
            ]
        })
        .collect();
    let columns = [
        ("pid", true),
        ("parent", true),
        ("name", false),
        ("command", false),
    ];
    table("processes", "Processes", &columns, rows)
}

fn drops(report: &Value) -> String {
    let rows = report["drops"]
        .as_object()
        .map(|drops| {
            drops
                .iter()
                .map(|(name, count)| vec![html(name), count.to_string()])
                .collect()
        })
        .unwrap_or_default();
    table(
        "drops",
        "Dropped events",
        &[("kind", false), ("events", true)],
        rows,
    )
}
