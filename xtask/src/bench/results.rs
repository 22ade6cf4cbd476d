//! What the benchmarks measured, and the figures derived from it. Every
//! figure is shown as the median of the repeats with [min–max] beside it; a
//! figure relative to bare is computed per repeat, against the same repeat's
//! bare run, so that drift of the machine between repeats cancels out.

use super::machine::Machine;

/// One configuration of a benchmark: a value per repeat.
pub struct Row {
    pub label: String,
    /// By the wall clock: ns per getppid call, or requests per second.
    pub values: Vec<f64>,
    /// By CPU time, which other processes sharing the core do not inflate:
    /// the loop's on-CPU ns per call, or the server's CPU µs per request.
    pub cpu_values: Vec<f64>,
    /// Benchmark 2: an untraced twin's CPU time per request over the traced
    /// server's, in percent, measured in the same seconds.
    pub twin_percent: Vec<f64>,
    /// What the observing tool itself cost, per repeat (empty when bare).
    pub cost: Cost,
    /// Why this configuration was not measured.
    pub skipped: Option<String>,
}

impl Row {
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            values: Vec::new(),
            cpu_values: Vec::new(),
            twin_percent: Vec::new(),
            cost: Cost::default(),
            skipped: None,
        }
    }
}

#[derive(Default)]
pub struct Cost {
    /// CPU time per second of tracing, in percent of one core.
    pub cpu_percent: Vec<f64>,
    pub peak_rss_mib: Vec<f64>,
    /// From its start to its probes being live.
    pub attach_ms: Vec<f64>,
    /// From SIGINT to its exit.
    pub report_ms: Vec<f64>,
}

/// Benchmark 2b, per repeat: what the traced server pays, by the kernel's
/// accounting (see `service::measure_server_cost`). All per request of the
/// traced server; times in ns.
#[derive(Default)]
pub struct ServerCost {
    /// The programs' work for the traced server: its tracer's program time
    /// less that of a tracer of an idle process, by `programs::GROUPS`.
    pub traced_work_ns: [Vec<f64>; 3],
    /// The programs' filter on the server's own events (its wait syscalls,
    /// its switches out), which the difference above takes out.
    pub own_filter_ns: Vec<f64>,
    /// The idle process's tracer: the filter on every process's events.
    pub everyone_filter_ns: Vec<f64>,
    /// The traced server's CPU time.
    pub server_ns: Vec<f64>,
    /// The server's syscalls, from the `--all-syscalls` runs of (2).
    pub syscalls: Vec<f64>,
    /// The server's wait syscalls (poll family, futex) and switches out.
    pub waits: Vec<f64>,
    pub switches: Vec<f64>,
}

pub struct Results {
    pub machine: Machine,
    pub tracer: String,
    pub repeats: usize,
    pub syscall_calls: u64,
    pub observed_calls: u64,
    pub wrk: String,
    /// The first row is the bare baseline.
    pub syscall: Vec<Row>,
    /// The first row is the bare baseline.
    pub service: Vec<Row>,
    pub server_cost: ServerCost,
    pub streamed_calls: u64,
    /// The first row is the bare baseline.
    pub streamed: Vec<Row>,
    pub elapsed_s: f64,
}

/// min, median, max; None when empty.
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (first, last) = (*sorted.first()?, *sorted.last()?);
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    Some((first, median, last))
}

/// A figure of a row relative to the bare row, per repeat.
pub type Relative = fn(&Row, &Row) -> Vec<f64>;

fn paired(values: &[f64], base: &[f64], combine: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    values
        .iter()
        .zip(base)
        .map(|(value, base)| combine(*value, *base))
        .collect()
}

pub fn added(row: &Row, base: &Row) -> Vec<f64> {
    paired(&row.values, &base.values, |value, base| value - base)
}

pub fn ratio(row: &Row, base: &Row) -> Vec<f64> {
    paired(&row.values, &base.values, |value, base| value / base)
}

pub fn cpu_added(row: &Row, base: &Row) -> Vec<f64> {
    paired(&row.cpu_values, &base.cpu_values, |value, base| {
        value - base
    })
}

pub fn percent_of_bare(row: &Row, base: &Row) -> Vec<f64> {
    paired(&row.values, &base.values, |value, base| {
        100.0 * value / base
    })
}

pub fn twin_percent(row: &Row, _: &Row) -> Vec<f64> {
    row.twin_percent.clone()
}

/// Requests per CPU-second in percent of bare: the throughput kept when
/// the server has its core to itself.
pub fn cpu_percent_of_bare(row: &Row, base: &Row) -> Vec<f64> {
    paired(&row.cpu_values, &base.cpu_values, |value, base| {
        100.0 * base / value
    })
}
