//! The first screen: what blocked the event loop. Stall groups (cause,
//! task, count, total, max, code line expandable to the stack), then every
//! stall in time order, one row each, which the timeline links to.

use serde_json::Value;

use super::{
    data::Stacks,
    escape::html,
    fields::{duration, list, num, text},
    frames,
    table::{self, Row},
};

/// The stall groups, most total time first.
pub fn groups(report: &Value, stacks: &mut Stacks) -> String {
    let groups = list(report, "stall_groups");
    let mut out = String::from("<section id=\"blocked\"><h2>What blocked the event loop</h2>");
    if groups.is_empty() {
        out.push_str(&no_stalls(report));
    } else {
        let with_task = groups.iter().any(|g| has_task(&g["cause"]));
        let mut columns = vec![("#", false), ("cause", false)];
        columns.extend(with_task.then_some(("task", false)));
        columns.extend([
            ("stalls", true),
            ("total", true),
            ("max", true),
            ("code", false),
        ]);
        let rows = groups
            .iter()
            .enumerate()
            .map(|(rank, group)| {
                let cause = &group["cause"];
                let mut cells = vec![(rank + 1).to_string(), cause_cell(cause)];
                cells.extend(with_task.then(|| task(cause)));
                cells.extend([
                    num(group, "count").to_string(),
                    duration(group, "total_ns"),
                    duration(group, "max_ns"),
                    frames::of(cause, stacks),
                ]);
                Row {
                    attributes: format!("class=\"{}\"", kind_class(cause)),
                    cells,
                }
            })
            .collect();
        out.push_str(&table::render("groups", &columns, rows));
    }
    out.push_str("</section>");
    out
}

/// Every stall, in time order; row `stall-N` is `stalls[N]` of the JSON.
pub fn every_stall(report: &Value, stacks: &mut Stacks) -> String {
    let stalls = list(report, "stalls");
    if stalls.is_empty() {
        return String::new();
    }
    let with_task = stalls.iter().any(|s| has_task(&s["cause"]));
    let mut columns = vec![
        ("#", false),
        ("at", true),
        ("thread", false),
        ("duration", true),
        ("on CPU", true),
        ("blocked", true),
        ("run queue", true),
        ("cause", false),
    ];
    columns.extend(with_task.then_some(("task", false)));
    columns.push(("code", false));
    let rows = stalls
        .iter()
        .enumerate()
        .map(|(index, stall)| {
            let cause = &stall["cause"];
            let mut cells = vec![
                (index + 1).to_string(),
                format!("{:.3} s", num(stall, "start_ns") as f64 / 1e9),
                thread(report, num(stall, "tid")),
                duration(stall, "duration_ns"),
                duration(stall, "on_cpu_ns"),
                duration(stall, "blocked_ns"),
                duration(stall, "runqueue_ns"),
                cause_cell(cause),
            ];
            cells.extend(with_task.then(|| task(cause)));
            cells.push(frames::of(cause, stacks));
            Row {
                attributes: format!("id=\"stall-{index}\" class=\"{}\"", kind_class(cause)),
                cells,
            }
        })
        .collect();
    format!(
        "<section id=\"stalls\"><h2>Every stall</h2>{}</section>",
        table::render("stalls", &columns, rows)
    )
}

fn no_stalls(report: &Value) -> String {
    if list(report, "loops").is_empty() {
        "<p class=\"good\">No event loop was seen: no thread waited in epoll, poll, select or io_uring while traced.</p>".into()
    } else {
        format!(
            "<p class=\"good\">No stall: every loop iteration took less than {}.</p>",
            duration(report, "threshold_ns")
        )
    }
}

/// `kind-syscall`, `kind-cpu`, ...: the colour of a cause, here and on the
/// timeline.
fn kind_class(cause: &Value) -> String {
    format!("kind-{}", cause["kind"].as_str().unwrap_or("mixed"))
}

fn cause_cell(cause: &Value) -> String {
    let label = match cause["kind"].as_str() {
        Some("syscall") => "blocked",
        Some("cpu") => "on CPU",
        Some("runqueue") => "run queue",
        Some("gil") => "GIL",
        _ => "mixed",
    };
    let nested = if cause["nested_loop"].as_bool() == Some(true) {
        " <span class=\"tag\">nested loop</span>"
    } else {
        ""
    };
    format!(
        "<span class=\"badge\">{label}</span> <span class=\"cause\">{}</span>{nested}",
        text(cause, "description")
    )
}

fn has_task(cause: &Value) -> bool {
    cause["task"].is_object()
}

/// The asyncio task that ran the stall (`name`, `coro`), when the report
/// knows it.
fn task(cause: &Value) -> String {
    let task = &cause["task"];
    if !task.is_object() {
        return "<span class=\"muted\">none</span>".into();
    }
    format!(
        "<span class=\"task\">{}</span> <span class=\"muted\">{}</span>",
        text(task, "name"),
        text(task, "coro")
    )
}

/// `python3 (1234)`: the thread's name from the report's thread list.
fn thread(report: &Value, tid: u64) -> String {
    let comm = list(report, "threads")
        .iter()
        .find(|t| num(t, "tid") == tid)
        .and_then(|t| t["comm"].as_str())
        .unwrap_or("?");
    format!("{} <span class=\"muted\">{tid}</span>", html(comm))
}
