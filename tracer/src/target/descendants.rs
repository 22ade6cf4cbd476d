//! The processes a traced process had already started when tracing began
//! (a pre-fork server's workers), found in /proc.
//!
//! The kernel follows the children a traced process forks from the moment
//! it is in the traced-process map; the ones forked before that are only in
//! /proc. So each process is put in the map *before* /proc is read for its
//! children: a child forked before that read is in /proc, one forked after
//! it is the kernel's. Every process added gets such a later read (the walk
//! reads /proc again until it finds nothing new), so none falls in between.

use std::{
    collections::{HashMap, HashSet},
    fs,
};

use crate::procfs::status::{self, proc_path};

/// How many times /proc is read at most. One read finds a whole tree; the
/// next ones only what was forked meanwhile, before its parent was traced.
/// A process forked later is the kernel's to follow: a server that forks
/// all the time must not keep the walk going.
const MAX_READS: usize = 8;

/// A process found running under a traced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descendant {
    pub pid: u32,
    pub parent: u32,
}

/// Finds the live descendants of `roots` and hands each to `trace`, parent
/// before child, as it goes: `trace` must make the kernel follow the
/// process's forks before it returns. Processes that exit meanwhile are
/// left out quietly; the tracer itself (a descendant of the shell it was
/// started from) and its own children are never included.
pub fn trace_descendants<E>(
    roots: &[u32],
    mut trace: impl FnMut(Descendant) -> Result<(), E>,
) -> Result<Vec<Descendant>, E> {
    let mut known: HashSet<u32> = roots.iter().copied().collect();
    // Never descend into ourselves: our children are our own helpers.
    known.insert(std::process::id());
    let mut found = Vec::new();
    for _ in 0..MAX_READS {
        let new = new_descendants(&read_parents(), &known);
        if new.is_empty() {
            break;
        }
        for descendant in new {
            known.insert(descendant.pid);
            trace(descendant)?;
            found.push(descendant);
        }
    }
    found.retain(|d| is_alive(d.pid));
    Ok(found)
}

/// Every live user process's parent, from /proc/PID/stat. A process that
/// exits while /proc is read is simply missing.
fn read_parents() -> HashMap<u32, u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = status::read_stat(&proc_path(pid, "stat")).ok()?;
            (!stat.is_zombie() && !stat.is_kernel_thread()).then_some((pid, stat.ppid))
        })
        .collect()
}

/// The processes below `known` ones that are not known themselves, each
/// after its parent. `known` processes are not descended into again from
/// outside (they are roots or were found already) but their new children
/// are found.
fn new_descendants(parents: &HashMap<u32, u32>, known: &HashSet<u32>) -> Vec<Descendant> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, &parent) in parents {
        children.entry(parent).or_default().push(pid);
    }
    let mut new = Vec::new();
    // The ancestors whose children are to be looked at: every known process
    // but ourselves, then each new one.
    let own = std::process::id();
    let mut pending: Vec<u32> = known.iter().copied().filter(|&p| p != own).collect();
    pending.sort_unstable();
    let mut seen = known.clone();
    let mut next = 0;
    while let Some(&parent) = pending.get(next) {
        next += 1;
        let mut kids = children.get(&parent).cloned().unwrap_or_default();
        kids.sort_unstable();
        for pid in kids {
            if seen.insert(pid) {
                new.push(Descendant { pid, parent });
                pending.push(pid);
            }
        }
    }
    new
}

fn is_alive(pid: u32) -> bool {
    status::read_stat(&proc_path(pid, "stat")).is_ok_and(|stat| !stat.is_zombie())
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    fn tree(edges: &[(u32, u32)]) -> HashMap<u32, u32> {
        edges.iter().copied().collect()
    }

    #[test]
    fn finds_a_whole_tree_parents_first() {
        // 10 forked 11 and 12; 12 forked 13; 20 is unrelated.
        let parents = tree(&[(10, 1), (11, 10), (12, 10), (13, 12), (20, 1), (21, 20)]);
        let known = HashSet::from([10]);
        let found = new_descendants(&parents, &known);
        let pids: Vec<(u32, u32)> = found.iter().map(|d| (d.pid, d.parent)).collect();
        assert_eq!(pids, [(11, 10), (12, 10), (13, 12)]);
    }

    #[test]
    fn known_processes_are_not_found_again() {
        let parents = tree(&[(11, 10), (12, 10), (13, 12), (14, 11)]);
        let known = HashSet::from([10, 11, 12, 13]);
        let found = new_descendants(&parents, &known);
        assert_eq!(
            found,
            [Descendant {
                pid: 14,
                parent: 11
            }]
        );
    }

    #[test]
    fn several_roots() {
        let parents = tree(&[(11, 10), (21, 20), (31, 30)]);
        let known = HashSet::from([10, 20]);
        let pids: Vec<u32> = new_descendants(&parents, &known)
            .iter()
            .map(|d| d.pid)
            .collect();
        assert_eq!(pids, [11, 21]);
    }

    #[test]
    fn finds_running_children_of_a_real_process() {
        // sh forks two sleeps and waits: both are its descendants.
        let mut shell = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & echo started; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = shell.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        let mut traced = Vec::new();
        let found = trace_descendants::<()>(&[shell.id()], |d| {
            traced.push(d.pid);
            Ok(())
        })
        .unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|d| d.parent == shell.id()));
        assert_eq!(traced, found.iter().map(|d| d.pid).collect::<Vec<_>>());
        for d in &found {
            // SAFETY: killing the sleeps this test started.
            unsafe { libc::kill(d.pid as i32, libc::SIGKILL) };
        }
        let _ = shell.wait();
    }

    #[test]
    fn never_includes_the_tracer_itself() {
        // Our parent's descendants include us: we must not be among them.
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() } as u32;
        let found = trace_descendants::<()>(&[parent], |_| Ok(())).unwrap();
        assert!(found.iter().all(|d| d.pid != std::process::id()));
    }
}
