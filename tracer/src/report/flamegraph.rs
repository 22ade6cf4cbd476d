//! Flame graphs: folded stacks (`frame;frame;frame count`, outermost frame
//! first, as inferno and Brendan Gregg's flamegraph.pl read them) and the
//! SVG drawn from them by inferno.

use std::collections::BTreeMap;

use inferno::flamegraph::{self, Options};

use crate::{
    analyze::cpu::{frame_label, profile_samples},
    report::model::OffCpuRow,
    trace::{Frame, Trace},
};

/// A frame name safe in the folded format: no `;` (the separator), no
/// line breaks.
fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// `outer;...;inner` for a stack stored innermost first.
fn folded_path(frames: &[Frame]) -> String {
    let labels: Vec<String> = frames
        .iter()
        .rev()
        .map(|f| sanitize(&frame_label(f)))
        .collect();
    labels.join(";")
}

/// Folded text from (path, count) pairs, sorted by path (deterministic).
fn fold(counts: BTreeMap<String, u64>) -> String {
    counts
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(path, count)| format!("{path} {count}\n"))
        .collect()
}

/// The CPU profile: one count per sample.
pub fn cpu_folded(trace: &Trace) -> String {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for sample in profile_samples(trace) {
        let path = folded_path(&trace.stack(sample.stack));
        let path = if path.is_empty() {
            "[no stack]".to_string()
        } else {
            path
        };
        *counts.entry(path).or_default() += 1;
    }
    fold(counts)
}

/// The off-CPU profile in milliseconds, the wait reason as the root frame;
/// short waits summed by syscall show as `[short waits in SYSCALL]`.
pub fn offcpu_folded(rows: &[OffCpuRow]) -> String {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows {
        let mut path = row.reason.name().to_string();
        let frames = folded_path(&row.stack);
        if !frames.is_empty() {
            path.push(';');
            path.push_str(&frames);
        } else if let Some(syscall) = &row.syscall {
            path.push_str(&format!(";[{syscall}]"));
        }
        if let Some(thread) = row
            .tid
            .filter(|_| row.stack.is_empty() && row.syscall.is_none())
        {
            path.push_str(&format!(";[thread {thread}]"));
        }
        *counts.entry(path).or_default() += row.total_ns.div_ceil(1_000_000);
    }
    fold(counts)
}

/// An SVG flame graph of `folded`; the same input gives the same bytes.
pub fn svg(folded: &str, title: &str, count_name: &str) -> String {
    draw(folded, title, count_name).unwrap_or_else(|error| {
        log::warn!("cannot draw the {title} flame graph: {error}");
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><text y=\"20\">{title}: {error}</text></svg>\n"
        )
    })
}

fn draw(folded: &str, title: &str, count_name: &str) -> Result<String, std::io::Error> {
    let mut options = Options::default();
    options.title = title.to_string();
    options.count_name = count_name.to_string();
    // Colours from a hash of the name, not random: reproducible output.
    options.hash = true;
    options.deterministic = true;
    let mut svg = Vec::new();
    if folded.trim().is_empty() {
        // inferno refuses empty input; an empty graph says what happened.
        flamegraph::from_lines(&mut options, ["[no samples] 1"], &mut svg)?;
    } else {
        flamegraph::from_lines(&mut options, folded.lines(), &mut svg)?;
    }
    String::from_utf8(svg).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analyze::offcpu::WaitReason,
        trace::{FrameKind, SampleRecord, TargetInfo},
    };

    fn frame(function: &str, kind: FrameKind) -> Frame {
        Frame {
            function: function.into(),
            file: (kind == FrameKind::Python).then(|| "app.py".to_string()),
            line: (kind == FrameKind::Python).then_some(7),
            column: None,
            module: None,
            kind,
        }
    }

    fn sample_trace() -> Trace {
        let sample = |stack| SampleRecord {
            pid: 1,
            tid: 1,
            time_ns: 0,
            for_stall: false,
            stack,
            task: None,
        };
        Trace {
            profile_hz: 99,
            stacks: vec![
                vec![
                    frame("hot;loop", FrameKind::Python),
                    frame("main", FrameKind::Native),
                ],
                vec![
                    frame("copy_page", FrameKind::Kernel),
                    frame("main", FrameKind::Native),
                ],
            ],
            samples: vec![sample(0), sample(0), sample(1)],
            ..Trace::empty(TargetInfo {
                pid: 1,
                comm: "app".into(),
                cmdline: vec![],
            })
        }
    }

    #[test]
    fn folds_cpu_samples() {
        assert_eq!(
            cpu_folded(&sample_trace()),
            "main;copy_page_[k] 1\nmain;hot:loop (app.py:7) 2\n"
        );
    }

    #[test]
    fn folds_offcpu_rows_in_ms() {
        let row = |reason, total_ns, stack: Vec<Frame>, syscall: Option<&str>| OffCpuRow {
            reason,
            tid: Some(9),
            comm: None,
            syscall: syscall.map(str::to_string),
            target: None,
            total_ns,
            count: 1,
            stack,
            task: None,
        };
        let rows = vec![
            row(
                WaitReason::Socket,
                300_400_000,
                vec![frame("recv", FrameKind::Native)],
                Some("recvfrom"),
            ),
            row(WaitReason::Lock, 500_000, vec![], Some("futex")),
            row(WaitReason::Idle, 2_000_000_000, vec![], None),
        ];
        assert_eq!(
            offcpu_folded(&rows),
            "idle;[thread 9] 2000\nlock;[futex] 1\nsocket;recv 301\n"
        );
    }

    /// Compares with testdata/cpu.svg; `UPDATE_GOLDEN=1` rewrites it.
    #[test]
    fn golden_svg() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/report/testdata/cpu.svg");
        let actual = svg(&cpu_folded(&sample_trace()), "CPU", "samples");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &actual).unwrap();
        }
        assert_eq!(actual, std::fs::read_to_string(path).unwrap());
        assert!(actual.contains("hot:loop (app.py:7)"));
    }
}
