//! The snapshot in the OpenMetrics text format, written by the
//! `prometheus-client` crate's encoder on each scrape (a `Collector`).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeCounterValue, EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};

use super::{
    buckets::Classic,
    events::{Key, Sum},
    snapshot::Snapshot,
};

/// The HTTP Content-Type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// The latest snapshot, shared by the recording loop and the server.
#[derive(Debug, Clone, Default)]
pub struct Shared(pub Arc<Mutex<Snapshot>>);

impl Shared {
    pub fn set(&self, snapshot: Snapshot) {
        if let Ok(mut latest) = self.0.lock() {
            *latest = snapshot;
        }
    }
}

/// The exposition of the latest snapshot.
pub fn encode(shared: &Shared) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(shared.clone()));
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

impl Collector for Shared {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(snapshot) = self.0.lock() else {
            return Ok(());
        };
        encode_loops(&snapshot, &mut encoder)?;
        encode_events(&snapshot, &mut encoder)?;
        encode_tracer(&snapshot, &mut encoder)
    }
}

/// A thread's labels.
fn thread_labels(snapshot: &Snapshot, tid: u32) -> Labels {
    let (pid, comm) = snapshot.threads.get(&tid).cloned().unwrap_or_default();
    vec![
        ("pid", pid.to_string()),
        ("tid", tid.to_string()),
        ("comm", comm),
    ]
}

fn encode_loops(
    snapshot: &Snapshot,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        "tracer_loop_iteration",
        "Busy time of event-loop iterations (from a poll call's return to the next poll call).",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    for lp in &snapshot.loops {
        let labels = thread_labels(snapshot, lp.tid);
        histogram(family.encode_family(&labels)?, &lp.iterations)?;
    }
    let cpu = snapshot.loops.iter().filter_map(|lp| {
        let ns = lp.cpu_ns?;
        Some((thread_labels(snapshot, lp.tid), seconds(ns)))
    });
    counters(
        encoder,
        ("tracer_cpu", "On-CPU time of loop threads while traced."),
        Some(&Unit::Seconds),
        cpu,
    )
}

fn encode_events(
    snapshot: &Snapshot,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let events = &snapshot.events;
    let stalls = ("cause", "syscall");
    counters(
        encoder,
        (
            "tracer_stalls",
            "Event-loop stalls (iterations of --threshold or more), by cause kind and the syscall they slept in.",
        ),
        None,
        labelled(snapshot, &events.stalls, stalls).map(|(l, sum)| (l, sum.count)),
    )?;
    counters(
        encoder,
        (
            "tracer_stall",
            "Time in event-loop stalls, by cause kind and syscall.",
        ),
        Some(&Unit::Seconds),
        labelled(snapshot, &events.stalls, stalls).map(|(l, sum)| (l, seconds(sum.ns))),
    )?;
    let calls = ("target_kind", "syscall");
    counters(
        encoder,
        (
            "tracer_blocking_calls",
            "Syscalls of --threshold or more, by fd kind and syscall.",
        ),
        None,
        labelled(snapshot, &events.blocking, calls).map(|(l, sum)| (l, sum.count)),
    )?;
    counters(
        encoder,
        (
            "tracer_blocking_call",
            "Time in syscalls of --threshold or more, by fd kind and syscall.",
        ),
        Some(&Unit::Seconds),
        labelled(snapshot, &events.blocking, calls).map(|(l, sum)| (l, seconds(sum.ns))),
    )?;
    let sleeps = events
        .offcpu
        .iter()
        .map(|((tid, reason, _, task), sum)| (*tid, *reason, task.as_str(), sum.ns));
    let idle = snapshot
        .loops
        .iter()
        .map(|lp| (lp.tid, "idle", "", lp.idle_ns));
    let offcpu = sleeps.chain(idle).map(|(tid, reason, task, ns)| {
        let mut labels = thread_labels(snapshot, tid);
        labels.push(("reason", reason.to_string()));
        push_task(&mut labels, task);
        (labels, seconds(ns))
    });
    counters(
        encoder,
        (
            "tracer_offcpu",
            "Time asleep, by wait reason: sleeps of --offcpu-min or more, and the loop's idle wait.",
        ),
        Some(&Unit::Seconds),
        offcpu,
    )
}

/// A counter family: (name, help), and its samples.
fn counters<V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    (name, help): (&str, &str),
    unit: Option<&Unit>,
    samples: impl Iterator<Item = (Labels, V)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Event sums with their labels: the thread's and the key's two words.
fn labelled<'a>(
    snapshot: &'a Snapshot,
    sums: &'a BTreeMap<Key, Sum>,
    names: (&'static str, &'static str),
) -> impl Iterator<Item = (Labels, Sum)> + 'a {
    sums.iter()
        .map(move |(key, sum)| (key_labels(snapshot, key, names), *sum))
}

fn key_labels(
    snapshot: &Snapshot,
    (tid, first, second, task): &Key,
    (a, b): (&'static str, &'static str),
) -> Labels {
    let mut labels = thread_labels(snapshot, *tid);
    labels.push((a, first.to_string()));
    labels.push((b, second.clone()));
    push_task(&mut labels, task);
    labels
}

/// The `task` label (`metrics::tasks`), where the event ran in a task.
fn push_task(labels: &mut Labels, task: &str) {
    if !task.is_empty() {
        labels.push(("task", task.to_string()));
    }
}

fn encode_tracer(
    snapshot: &Snapshot,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let family = encoder.encode_descriptor(
        "tracer_runqueue_latency",
        "How long traced threads waited for a CPU once runnable.",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    histogram(family, &snapshot.runqueue)?;
    let drops = &snapshot.drops;
    let dropped = [
        ("ringbuf_full", drops.ringbuf_full),
        ("thread_map_full", drops.thread_map_full),
        ("process_map_full", drops.process_map_full),
        ("kernel_stack", drops.kernel_stacks),
    ];
    counters(
        encoder,
        (
            "tracer_dropped_events",
            "Events the tracer could not record, by cause (ringbuf_full, thread_map_full, process_map_full; kernel_stack: a sample without its kernel stack).",
        ),
        None,
        dropped
            .into_iter()
            .map(|(kind, count)| (vec![("kind", kind.to_string())], count)),
    )?;
    let family = encoder.encode_descriptor(
        "tracer_events",
        "Records received from the kernel.",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(snapshot.tracer_events).encode(family)?;
    let family = encoder.encode_descriptor(
        "tracer_resident_memory",
        "The tracer's own resident memory.",
        Some(&Unit::Bytes),
        MetricType::Gauge,
    )?;
    ConstGauge::new(snapshot.tracer_rss_bytes as i64).encode(family)
}

fn histogram(mut encoder: MetricEncoder, classic: &Classic) -> Result<(), std::fmt::Error> {
    encoder.encode_histogram::<NoLabelSet>(
        classic.sum_seconds,
        classic.count,
        &classic.buckets,
        None,
    )
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{buckets::classic, events::Sum, snapshot::LoopThreadMetrics};
    use tracer_common::hist::{HIST_BUCKETS, bucket};

    #[test]
    fn scrape_text() {
        let mut hist = [0u64; HIST_BUCKETS];
        hist[bucket(150_000_000)] = 2;
        hist[bucket(1_000_000)] = 8;
        let mut snapshot = Snapshot {
            loops: vec![LoopThreadMetrics {
                pid: 10,
                tid: 11,
                comm: "python3".into(),
                iterations: classic(&hist, 308_000_000),
                idle_ns: 2_000_000_000,
                cpu_ns: Some(500_000_000),
                stats: tracer_common::LoopStats {
                    iterations: 10,
                    busy_ns: 308_000_000,
                    idle_ns: 2_000_000_000,
                    max_busy_ns: 150_000_000,
                    hist,
                },
            }],
            tracer_events: 42,
            tracer_rss_bytes: 1 << 20,
            ..Snapshot::default()
        };
        snapshot.threads.insert(11, (10, "python3".into()));
        snapshot.events.stalls.insert(
            (11, "syscall", "clock_nanosleep".into(), String::new()),
            Sum {
                count: 2,
                ns: 300_000_000,
            },
        );
        snapshot.events.stalls.insert(
            (11, "gil", "futex".into(), "fetch-user-*".into()),
            Sum {
                count: 1,
                ns: 40_000_000,
            },
        );
        let shared = Shared::default();
        shared.set(snapshot);
        let text = encode(&shared);
        let thread = r#"pid="10",tid="11",comm="python3""#;
        for line in [
            format!(
                r#"tracer_stalls_total{{{thread},cause="syscall",syscall="clock_nanosleep"}} 2"#
            ),
            format!(
                r#"tracer_stall_seconds_total{{{thread},cause="syscall",syscall="clock_nanosleep"}} 0.3"#
            ),
            format!(
                r#"tracer_stalls_total{{{thread},cause="gil",syscall="futex",task="fetch-user-*"}} 1"#
            ),
            format!("tracer_loop_iteration_seconds_count{{{thread}}} 10"),
            // 2^27 ns holds the 1 ms ones only; 2^28 ns the 150 ms ones too.
            format!(r#"tracer_loop_iteration_seconds_bucket{{le="0.134217728",{thread}}} 8"#),
            format!(r#"tracer_loop_iteration_seconds_bucket{{le="0.268435456",{thread}}} 10"#),
            format!(r#"tracer_loop_iteration_seconds_bucket{{le="+Inf",{thread}}} 10"#),
            format!(r#"tracer_offcpu_seconds_total{{{thread},reason="idle"}} 2.0"#),
            format!("tracer_cpu_seconds_total{{{thread}}} 0.5"),
            r#"tracer_dropped_events_total{kind="ringbuf_full"} 0"#.to_string(),
            "tracer_events_total 42".to_string(),
            "tracer_resident_memory_bytes 1048576".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
