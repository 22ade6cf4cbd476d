//! The `task` label: an asyncio Task's name pattern (`fetch-user-*`, as
//! `--group-by task` groups them). The first [`MAX_TASK_LABELS`] patterns
//! seen are labels of their own and later ones are `other`: a service that
//! names tasks by request keeps a bounded number of series, and a task's
//! counts never move from one label value to another (a top N by time would
//! move them, and Prometheus would read the drop as a counter reset).

use std::collections::BTreeSet;

use crate::{analyze::tasks::pattern, trace::TaskInfo};

/// Distinct task label values at most, besides `other`.
pub const MAX_TASK_LABELS: usize = 20;
/// The label of the patterns past the first [`MAX_TASK_LABELS`].
pub const OTHER: &str = "other";

#[derive(Debug, Clone, Default)]
pub struct TaskLabels {
    admitted: BTreeSet<String>,
}

impl TaskLabels {
    /// The label of `task`: empty (no label) outside any task.
    pub fn label(&mut self, task: Option<&TaskInfo>) -> String {
        let Some(task) = task else {
            return String::new();
        };
        let name = pattern(&task.name);
        if self.admitted.contains(&name) || self.admitted.len() < MAX_TASK_LABELS {
            self.admitted.insert(name.clone());
            return name;
        }
        OTHER.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str) -> TaskInfo {
        TaskInfo {
            name: name.to_string(),
            coro: "handle".to_string(),
            awaited_by: Vec::new(),
        }
    }

    #[test]
    fn patterns_up_to_the_bound_then_other() {
        let mut labels = TaskLabels::default();
        assert_eq!(labels.label(None), "");
        assert_eq!(labels.label(Some(&task("fetch-user-42"))), "fetch-user-*");
        for n in 1..MAX_TASK_LABELS {
            assert_eq!(labels.label(Some(&task(&format!("job{n}x")))), "job*x");
            let kind = "abcdefghijklmnopqrstuvwxyz".chars().nth(n).unwrap();
            labels.label(Some(&task(&format!("kind-{kind}"))));
        }
        // fetch-user-*, job*x and the first 18 kinds: the 19th kind was
        // already `other`.
        assert_eq!(labels.admitted.len(), MAX_TASK_LABELS);
        assert_eq!(labels.label(Some(&task("brand-new"))), OTHER);
        assert_eq!(labels.label(Some(&task("fetch-user-7"))), "fetch-user-*");
        assert_eq!(labels.label(Some(&task("job9x"))), "job*x");
    }
}
