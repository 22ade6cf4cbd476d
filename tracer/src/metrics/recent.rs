//! What each thread did lately, bounded: its last streamed calls and the
//! task labels of its last CPU samples. A stall arrives when its iteration
//! ends, after the calls and samples inside it: from those, the live
//! metrics tell its task and whether it was mostly a GIL wait, as the
//! report's analysis does from the whole trace (`analyze::loops`).

use std::collections::{HashMap, VecDeque};

/// Calls kept per thread: a stall's own calls are among the last ones.
const CALLS_KEPT: usize = 16;
/// Samples kept per thread: 0.6 s at the default 99 Hz, more than a stall
/// needs to have its majority.
const SAMPLES_KEPT: usize = 64;
/// Threads remembered at most: a service that starts threads all day would
/// grow the map for as long as the tracer runs, so beyond this it starts
/// over (a stall just then goes without its task label).
const THREADS_KEPT: usize = 4096;

struct Call {
    start_ns: u64,
    duration_ns: u64,
    gil: bool,
    task: String,
}

#[derive(Default)]
struct Thread {
    calls: VecDeque<Call>,
    /// (time, task label) of each sample.
    samples: VecDeque<(u64, String)>,
}

/// What a stall's calls and samples say of it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InStall {
    /// Time waiting for the GIL inside the stall.
    pub gil_ns: u64,
    /// The task label of the call that covers most of the stall, if any.
    pub call_task: Option<String>,
    /// The task label of most of the stall's samples, if more than half.
    pub sample_task: Option<String>,
}

#[derive(Default)]
pub struct Recent {
    threads: HashMap<u32, Thread>,
}

impl Recent {
    pub fn call(&mut self, tid: u32, start_ns: u64, duration_ns: u64, gil: bool, task: String) {
        let calls = &mut self.thread(tid).calls;
        if calls.len() == CALLS_KEPT {
            calls.pop_front();
        }
        calls.push_back(Call {
            start_ns,
            duration_ns,
            gil,
            task,
        });
    }

    pub fn sample(&mut self, tid: u32, time_ns: u64, task: String) {
        let samples = &mut self.thread(tid).samples;
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back((time_ns, task));
    }

    fn thread(&mut self, tid: u32) -> &mut Thread {
        if self.threads.len() >= THREADS_KEPT && !self.threads.contains_key(&tid) {
            self.threads.clear();
        }
        self.threads.entry(tid).or_default()
    }

    /// Thread `tid`'s stall over `window`; calls shorter than `min_call_ns`
    /// do not name its task.
    pub fn in_stall(&self, tid: u32, window: (u64, u64), min_call_ns: u64) -> InStall {
        let Some(thread) = self.threads.get(&tid) else {
            return InStall::default();
        };
        let shared = |call: &Call| {
            let end = call.start_ns + call.duration_ns;
            end.min(window.1)
                .saturating_sub(call.start_ns.max(window.0))
        };
        let gil_ns = thread.calls.iter().filter(|c| c.gil).map(shared).sum();
        let call_task = thread
            .calls
            .iter()
            .filter(|c| c.duration_ns >= min_call_ns)
            .map(|c| (shared(c), c))
            .filter(|(ns, _)| *ns > 0)
            .max_by_key(|(ns, _)| *ns)
            .map(|(_, c)| c.task.clone());
        let inside: Vec<&String> = thread
            .samples
            .iter()
            .filter(|(time, _)| (window.0..=window.1).contains(time))
            .map(|(_, task)| task)
            .collect();
        let sample_task = inside
            .iter()
            .find(|task| 2 * inside.iter().filter(|t| t == task).count() > inside.len())
            .map(|task| (*task).clone());
        InStall {
            gil_ns,
            call_task,
            sample_task,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_stall_gets_its_covering_call_its_gil_time_and_its_samples_task() {
        let mut recent = Recent::default();
        // Before the stall; then in it: a GIL wait and a long read.
        recent.call(7, 0, 50 * MS, false, "old".into());
        recent.call(7, 100 * MS, 30 * MS, true, String::new());
        recent.call(7, 140 * MS, 50 * MS, false, "fetch-*".into());
        for (n, task) in ["a", "b", "b", "b"].iter().enumerate() {
            recent.sample(7, 110 * MS + n as u64 * 10 * MS, task.to_string());
        }
        let found = recent.in_stall(7, (100 * MS, 200 * MS), 10 * MS);
        assert_eq!(
            found,
            InStall {
                gil_ns: 30 * MS,
                call_task: Some("fetch-*".into()),
                sample_task: Some("b".into()),
            }
        );
        assert_eq!(recent.in_stall(8, (0, MS), MS), InStall::default());
    }

    #[test]
    fn no_majority_no_task_and_the_oldest_are_forgotten() {
        let mut recent = Recent::default();
        for n in 0..SAMPLES_KEPT as u64 + 2 {
            let task = if n % 2 == 0 { "a" } else { "b" };
            recent.sample(1, n, task.into());
        }
        assert_eq!(recent.threads[&1].samples.len(), SAMPLES_KEPT);
        assert_eq!(recent.in_stall(1, (0, 1000), 0).sample_task, None);
        assert_eq!(recent.in_stall(1, (2, 2), 0).sample_task, Some("a".into()));
    }

    #[test]
    fn the_threads_remembered_are_bounded() {
        let mut recent = Recent::default();
        for tid in 0..THREADS_KEPT as u32 {
            recent.sample(tid, 0, String::new());
        }
        recent.sample(0, 1, String::new());
        assert_eq!(recent.threads.len(), THREADS_KEPT);
        recent.sample(THREADS_KEPT as u32, 0, "new".into());
        assert_eq!(recent.threads.len(), 1);
    }
}
