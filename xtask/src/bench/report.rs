//! The results as a table for people (and the README), and as bench.json.

use std::fmt::Write;

use serde_json::{Value, json};

use super::NICE;
use super::programs::GROUPS;
use super::results::{
    Relative, Results, Row, ServerCost, added, cpu_added, cpu_percent_of_bare, percent_of_bare,
    ratio, spread, twin_percent,
};
use super::syscall::ENTRY_PATH_ROW;

/// "median [min–max]" with `decimals` digits.
fn show(values: &[f64], decimals: usize) -> String {
    match spread(values) {
        Some((min, median, max)) => {
            format!("{median:.decimals$} [{min:.decimals$}–{max:.decimals$}]")
        }
        None => "–".into(),
    }
}

/// 2000000 → "2,000,000".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Columns of a table: a header and, per row, a (figure, decimals) per
/// column after the label.
struct Columns<'a> {
    header: &'a [&'a str],
    widths: &'a [usize],
    figures: &'a [(Relative, usize)],
}

/// One line: cells left-aligned in `widths` (the last one unpadded).
fn line(out: &mut String, widths: &[usize], cells: &[String]) {
    out.push_str("  ");
    for (cell, width) in cells.iter().zip(widths.iter().chain([&0])) {
        let _ = write!(out, " {cell:<width$}");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
}

fn section(out: &mut String, rows: &[Row], columns: &Columns) {
    let header: Vec<String> = columns.header.iter().map(|h| h.to_string()).collect();
    line(out, columns.widths, &header);
    let Some(base) = rows.first() else { return };
    for row in rows {
        let mut cells = vec![row.label.clone()];
        match &row.skipped {
            Some(reason) => cells.push(format!("skipped: {reason}")),
            None => cells.extend(
                columns
                    .figures
                    .iter()
                    .map(|(figure, decimals)| show(&figure(row, base), *decimals)),
            ),
        }
        line(out, columns.widths, &cells);
    }
}

fn values(row: &Row, _: &Row) -> Vec<f64> {
    row.values.clone()
}

fn cpu_values(row: &Row, _: &Row) -> Vec<f64> {
    row.cpu_values.clone()
}

pub fn table(results: &Results) -> String {
    let r = results;
    let m = &r.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}, {} cores, {:.0} GiB, Linux {}",
        m.cpu, m.cores, m.memory_gib, m.kernel
    );
    let tools: Vec<String> = m.tools.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(out, "Tools: {}", tools.join(" · "));
    let busy = |cores: Option<f64>| cores.map_or_else(|| "?".into(), |c| format!("{c:.2}"));
    let _ = writeln!(
        out,
        "Other work on the machine: {} cores busy before the bench, {} after",
        busy(m.busy_before),
        busy(m.busy_after)
    );
    let _ = writeln!(
        out,
        "Tracer: {}\n{} repeats, interleaved, all processes at nice {NICE}; median [min–max]; ratios per repeat against that repeat's bare run; took {:.0} s",
        r.tracer, r.repeats, r.elapsed_s
    );

    let _ = writeln!(
        out,
        "\n1. Syscall cost: getppid() loop on CPU 0, {} calls ({} under strace and perf trace)",
        thousands(r.syscall_calls),
        thousands(r.observed_calls)
    );
    section(&mut out, &r.syscall, &PER_CALL);
    let _ = writeln!(
        out,
        "   * from the loop's thread CPU time: not inflated by other processes on CPU 0, but blind to the time strace keeps the loop stopped"
    );

    let _ = writeln!(
        out,
        "\n2. aiohttp hello world: two identical servers share CPU 0, each under `{}` on CPU 1; the tool traces one",
        r.wrk
    );
    let columns = Columns {
        header: &[
            "",
            "requests/s",
            "% of bare",
            "server CPU µs/req",
            "req per CPU-s, % of bare",
            "req per CPU-s, % of twin*",
        ],
        widths: &[31, 20, 20, 20, 26],
        figures: &[
            (values, 0),
            (percent_of_bare, 1),
            (cpu_values, 1),
            (cpu_percent_of_bare, 1),
            (twin_percent, 1),
        ],
    };
    section(&mut out, &r.service, &columns);
    let _ = writeln!(
        out,
        "   * against the untraced twin in the same seconds (immune to this machine's drift; the bare row shows the method's own spread). \
         It leaves out what both twins pay alike (the syscall entry path, timer interrupts: see 1's other-process rows), and, like any CPU-time figure, the time strace keeps its target stopped"
    );

    server_cost_section(&mut out, r);

    let _ = writeln!(out, "\n3. The tools themselves while tracing (2), unpinned");
    let header = [
        "",
        "CPU, % of a core",
        "peak RSS, MiB",
        "attach, ms",
        "report, ms",
    ];
    let widths = [31, 20, 20, 20];
    line(&mut out, &widths, &header.map(String::from));
    for row in r.service.iter().skip(1).filter(|row| row.skipped.is_none()) {
        let c = &row.cost;
        let cells = [
            row.label.clone(),
            show(&c.cpu_percent, 1),
            show(&c.peak_rss_mib, 1),
            show(&c.attach_ms, 0),
            show(&c.report_ms, 0),
        ];
        line(&mut out, &widths, &cells);
    }
    let _ = writeln!(
        out,
        "   CPU: user+system time during the wrk run; attach: start → probes live; report: SIGINT → exit"
    );

    let _ = writeln!(
        out,
        "\n4. Streamed events: Python loop on CPU 0 of {} 64 KiB reads of /dev/zero, 3 functions deep",
        thousands(r.streamed_calls)
    );
    section(&mut out, &r.streamed, &PER_CALL);
    let _ = writeln!(
        out,
        "   with --threshold 1us every call is streamed with its stack copy and Python frames: \
         the difference of the two tracer rows is the cost of one streamed event"
    );
    out
}

/// The columns of a loop that times its own calls (benchmarks 1 and 4).
const PER_CALL: Columns = Columns {
    header: &[
        "",
        "ns/call",
        "added ns/call",
        "× bare",
        "added on-CPU ns/call*",
    ],
    widths: &[31, 20, 20, 20],
    figures: &[(values, 0), (added, 0), (ratio, 2), (cpu_added, 0)],
};

/// Per repeat: ns per request of the traced server that its syscalls' slower
/// entry path costs (1's other-process row × its syscalls per request).
fn entry_path_ns(r: &Results) -> Vec<f64> {
    let (Some(base), Some(row)) = (r.syscall.first(), r.syscall.get(ENTRY_PATH_ROW)) else {
        return Vec::new();
    };
    added(row, base)
        .iter()
        .zip(&r.server_cost.syscalls)
        .map(|(ns, syscalls)| ns * syscalls)
        .collect()
}

/// Per repeat: each of `parts` summed, in ns per request.
fn sum(parts: &[&[f64]]) -> Vec<f64> {
    let repeats = parts.iter().map(|part| part.len()).min().unwrap_or(0);
    (0..repeats)
        .map(|i| parts.iter().map(|part| part[i]).sum())
        .collect()
}

/// Per repeat: `ns` per request in percent of the server's CPU time.
fn percent_of_server(ns: &[f64], c: &ServerCost) -> Vec<f64> {
    ns.iter()
        .zip(&c.server_ns)
        .map(|(ns, server)| 100.0 * ns / server)
        .collect()
}

/// The figures of 2b, per repeat: (label, ns per request).
fn server_cost_rows(r: &Results) -> Vec<(String, Vec<f64>)> {
    let c = &r.server_cost;
    let mut rows: Vec<(String, Vec<f64>)> = GROUPS
        .iter()
        .zip(&c.traced_work_ns)
        .map(|((group, _), ns)| (format!("programs' work: {group}"), ns.clone()))
        .collect();
    rows.push((
        "programs' filter on its own events".into(),
        c.own_filter_ns.clone(),
    ));
    let syscalls = show(&c.syscalls, 1);
    rows.push((
        format!("syscall entry path ({syscalls} syscalls/req × 1's other-process row)"),
        entry_path_ns(r),
    ));
    let parts: Vec<&[f64]> = rows.iter().map(|(_, ns)| ns.as_slice()).collect();
    let total = sum(&parts);
    rows.push(("all".into(), total));
    rows
}

/// 2b: what the default tracer costs the traced server, by the kernel's
/// accounting.
fn server_cost_section(out: &mut String, r: &Results) {
    let c = &r.server_cost;
    let _ = writeln!(
        out,
        "\n2b. What the default tracer costs an aiohttp server alone on CPU 0 under `{}` on CPU 1, by the kernel's accounting (bpf_stats, beside a second tracer of an idle process; the stats add two clock reads to every program run, counted here too)",
        r.wrk
    );
    let widths = [58, 20];
    let header = ["", "ns per request", "% of the server's CPU"];
    line(out, &widths, &header.map(String::from));
    let rows = server_cost_rows(r);
    for (label, ns) in &rows {
        let percent = show(&percent_of_server(ns, c), 2);
        line(out, &widths, &[label.clone(), show(ns, 0), percent]);
    }
    if let Some((_, total)) = rows.last() {
        let kept: Vec<f64> = percent_of_server(total, c)
            .iter()
            .map(|percent| 100.0 - percent)
            .collect();
        let _ = writeln!(
            out,
            "   the server keeps {} % of its throughput; per request it ran {} µs and made {} wait syscalls and {} switches out",
            show(&kept, 2),
            show(
                &c.server_ns.iter().map(|ns| ns / 1000.0).collect::<Vec<_>>(),
                1
            ),
            show(&c.waits, 2),
            show(&c.switches, 3)
        );
    }
    let _ = writeln!(
        out,
        "   work: the server's tracer's program time less the idle process's tracer's; filter: what the idle one spends per run, times the server's wait syscalls (2 runs each) and switches out. \
         Not counted: the timer interrupts of the CPU profile (--rate), on every CPU. \
         The idle process's tracer, on every process's events (wrk's too): {} ns per request",
        show(&c.everyone_filter_ns, 0)
    );
}

/// What bench.json says of a loop's rows.
const PER_CALL_JSON: [(&str, Relative); 5] = [
    ("ns_per_call", values),
    ("added_ns_per_call", added),
    ("ratio_to_bare", ratio),
    ("on_cpu_ns_per_call", cpu_values),
    ("added_on_cpu_ns_per_call", cpu_added),
];

fn summary(values: &[f64]) -> Value {
    match spread(values) {
        Some((min, median, max)) => {
            json!({ "median": median, "min": min, "max": max, "samples": values })
        }
        None => Value::Null,
    }
}

fn rows(rows: &[Row], figures: &[(&str, Relative)]) -> Value {
    let Some(base) = rows.first() else {
        return json!([]);
    };
    let rows = rows.iter().map(|row| {
        let mut value = json!({ "configuration": row.label, "skipped": row.skipped });
        for (name, figure) in figures {
            value[*name] = summary(&figure(row, base));
        }
        if !row.cost.attach_ms.is_empty() {
            value["tool"] = json!({
                "cpu_percent_of_one_core": summary(&row.cost.cpu_percent),
                "peak_rss_mib": summary(&row.cost.peak_rss_mib),
                "attach_ms": summary(&row.cost.attach_ms),
                "report_ms": summary(&row.cost.report_ms),
            });
        }
        value
    });
    Value::Array(rows.collect())
}

pub fn json(results: &Results) -> Value {
    let r = results;
    let m = &r.machine;
    let tools: serde_json::Map<String, Value> = m
        .tools
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(v)))
        .collect();
    json!({
        "machine": {
            "cpu": m.cpu, "cores": m.cores, "memory_gib": m.memory_gib,
            "kernel": m.kernel, "tools": tools,
            "busy_cores_before": m.busy_before, "busy_cores_after": m.busy_after,
        },
        "tracer": r.tracer,
        "repeats": r.repeats,
        "elapsed_s": r.elapsed_s,
        "syscall": {
            "calls": r.syscall_calls,
            "calls_under_strace_and_perf": r.observed_calls,
            "rows": rows(&r.syscall, &PER_CALL_JSON),
        },
        "streamed": {
            "calls": r.streamed_calls,
            "rows": rows(&r.streamed, &PER_CALL_JSON),
        },
        "service": {
            "load": r.wrk,
            "rows": rows(&r.service, &[
                ("requests_per_s", values),
                ("percent_of_bare", percent_of_bare),
                ("server_cpu_us_per_request", cpu_values),
                ("requests_per_cpu_s_percent_of_bare", cpu_percent_of_bare),
                ("requests_per_cpu_s_percent_of_twin", twin_percent),
            ]),
            "cost_to_the_traced_server": {
                "ns_per_request": server_cost_rows(r)
                    .into_iter()
                    .map(|(label, ns)| (label, summary(&ns)))
                    .collect::<serde_json::Map<String, Value>>(),
                "server_cpu_ns_per_request": summary(&r.server_cost.server_ns),
                "syscalls_per_request": summary(&r.server_cost.syscalls),
                "wait_syscalls_per_request": summary(&r.server_cost.waits),
                "switches_out_per_request": summary(&r.server_cost.switches),
                "idle_tracer_ns_per_request": summary(&r.server_cost.everyone_filter_ns),
            },
        },
    })
}
