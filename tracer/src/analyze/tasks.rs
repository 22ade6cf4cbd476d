//! asyncio Tasks in the report: which task a stall ran in, in words, and
//! stalls grouped by task name pattern (`--group-by task`).

use std::collections::HashMap;

use super::loops::grouped;
use crate::{
    report::model::{StallGroup, StallRow},
    trace::{SampleRecord, TaskInfo},
};

/// ` in task 'fetch-user-42' (handle_request)`, and who awaits it.
pub fn describe(task: &TaskInfo) -> String {
    let mut text = format!(" in task '{}' ({})", task.name, task.coro);
    if !task.awaited_by.is_empty() {
        let chain: Vec<String> = task.awaited_by.iter().map(|t| format!("'{t}'")).collect();
        text.push_str(&format!(", awaited by {}", chain.join(" ← ")));
    }
    text
}

/// The task most of a stall's samples ran in, if more than half did: a
/// CPU stall in one task, not in loop code around it.
pub fn most_samples_in(samples: &[&SampleRecord]) -> Option<TaskInfo> {
    let mut counts: HashMap<&TaskInfo, usize> = HashMap::new();
    for task in samples.iter().filter_map(|s| s.task.as_ref()) {
        *counts.entry(task).or_default() += 1;
    }
    counts
        .into_iter()
        .find(|&(_, count)| 2 * count > samples.len())
        .map(|(task, _)| task.clone())
}

/// A task name with each run of digits as `*`: the tasks one
/// `create_task(name=f"fetch-user-{id}")` makes share `fetch-user-*`.
pub fn pattern(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('*') || out.is_empty() {
            out.push('*');
        }
    }
    out
}

/// Stalls grouped by their task's name pattern, most total time first;
/// those outside any task are one group whose `task` is null.
pub fn groups(rows: &[StallRow]) -> Vec<StallGroup> {
    let key = |row: &StallRow| row.cause.task.as_ref().map(|t| pattern(&t.name));
    let mut groups = grouped(rows, |row| format!("{:?}", key(row)));
    for group in &mut groups {
        group.task = group.cause.task.as_ref().map(|t| pattern(&t.name));
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.total_ns));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Cause, CauseKind};

    fn task(name: &str) -> TaskInfo {
        TaskInfo {
            name: name.into(),
            coro: "handle".into(),
            awaited_by: Vec::new(),
        }
    }

    fn stall(duration_ns: u64, task: Option<TaskInfo>) -> StallRow {
        StallRow {
            pid: 1,
            tid: 1,
            start_ns: 0,
            duration_ns,
            on_cpu_ns: 0,
            blocked_ns: duration_ns,
            runqueue_ns: 0,
            cause: Cause {
                task,
                ..Cause::empty(CauseKind::Syscall)
            },
        }
    }

    #[test]
    fn digit_runs_collapse() {
        assert_eq!(pattern("fetch-user-42"), "fetch-user-*");
        assert_eq!(pattern("Task-7"), "Task-*");
        assert_eq!(pattern("v2-shard-10-x"), "v*-shard-*-x");
        assert_eq!(pattern("slow-recv"), "slow-recv");
    }

    #[test]
    fn groups_by_pattern_most_time_first() {
        let rows = [
            stall(20, Some(task("fetch-user-1"))),
            stall(30, None),
            stall(25, Some(task("fetch-user-22"))),
            stall(10, Some(task("slow-cpu"))),
        ];
        let groups = groups(&rows);
        let summary: Vec<(Option<&str>, u64, u64)> = groups
            .iter()
            .map(|g| (g.task.as_deref(), g.count, g.total_ns))
            .collect();
        assert_eq!(
            summary,
            [
                (Some("fetch-user-*"), 2, 45),
                (None, 1, 30),
                (Some("slow-cpu"), 1, 10)
            ]
        );
        assert_eq!(groups[0].cause.task.as_ref().unwrap().name, "fetch-user-22");
    }

    #[test]
    fn a_task_describes_itself_and_who_awaits_it() {
        let mut leaf = task("fetch-user-42");
        assert_eq!(describe(&leaf), " in task 'fetch-user-42' (handle)");
        leaf.awaited_by = vec!["serve".into(), "main".into()];
        assert_eq!(
            describe(&leaf),
            " in task 'fetch-user-42' (handle), awaited by 'serve' ← 'main'"
        );
    }

    #[test]
    fn samples_name_a_task_only_by_majority() {
        let sample = |task: Option<TaskInfo>| SampleRecord {
            pid: 1,
            tid: 1,
            time_ns: 0,
            for_stall: true,
            stack: 0,
            task,
        };
        let cpu = [
            sample(Some(task("slow-cpu"))),
            sample(Some(task("slow-cpu"))),
            sample(None),
        ];
        let refs: Vec<&SampleRecord> = cpu.iter().collect();
        assert_eq!(
            most_samples_in(&refs).map(|t| t.name),
            Some("slow-cpu".into())
        );
        let split = [sample(Some(task("a"))), sample(None)];
        let refs: Vec<&SampleRecord> = split.iter().collect();
        assert_eq!(most_samples_in(&refs), None);
    }
}
