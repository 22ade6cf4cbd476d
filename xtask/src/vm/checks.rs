//! What each guest checks, the script that runs it there, and the table of
//! results read back from the serial console.
//!
//! The checks are the project's own integration tests, run one at a time
//! (`--exact`) with a deadline each; before them, two smoke checks that do
//! not depend on the eBPF programs loading: the kernel booted with BTF and
//! tracefs, and the tracer binary runs.

use std::{
    collections::BTreeMap,
    fmt::Write,
    path::{Path, PathBuf},
};

/// Starts the line guest.sh prints before a check's output.
const BEGIN: &str = "@@tracer-vm begin ";
/// Lines of the console shown when the guest never reached the checks.
const CONSOLE_TAIL: usize = 20;
/// Starts the line that ends a check: `END<column> <exit status>`.
pub const END: &str = "@@tracer-vm end ";

pub enum Kind {
    Boot,
    Version,
    /// An integration test: its test binary (file of tests/tests), its name,
    /// and a deadline in seconds (TCG runs code several times slower).
    Test {
        binary: &'static str,
        name: &'static str,
        timeout: u32,
    },
}

pub struct Check {
    /// The table's column.
    pub column: &'static str,
    pub kind: Kind,
}

const fn test(
    column: &'static str,
    binary: &'static str,
    name: &'static str,
    timeout: u32,
) -> Check {
    Check {
        column,
        kind: Kind::Test {
            binary,
            name,
            timeout,
        },
    }
}

/// The issue's list: both modes attach and exit 0 (the two asyncio tests),
/// a C epoll loop's planted stall with its native stack and duration, exact
/// `--all-syscalls` counts, an asyncio stall with Python frames and socket
/// peer (the lean asyncio test), a CPU profile with samples, off-CPU reasons;
/// the asyncio Task of each stall, read in the kernel; a cgroup's processes
/// (`--cgroup`: the kernel's cgroup id at exec), a GIL stall with its
/// holder (read in the kernel as the wait begins), and Node's stalls named
/// by their JavaScript functions, interpreted and optimized, in both modes.
pub const ALL: [Check; 12] = [
    Check {
        column: "boot",
        kind: Kind::Boot,
    },
    Check {
        column: "version",
        kind: Kind::Version,
    },
    test("asyncio-lean", "event_loop", "asyncio_default_loop", 180),
    test(
        "asyncio-all-syscalls",
        "event_loop",
        "asyncio_default_loop_all_syscalls",
        180,
    ),
    test(
        "c-loop-stall",
        "event_loop",
        "page_faults_in_callbacks",
        150,
    ),
    test(
        "exact-counts",
        "syscalls",
        "c_program_exact_counts_and_full_stack",
        150,
    ),
    test(
        "cpu-profile",
        "profiles",
        "kernel_time_is_sampled_inside_the_syscall",
        150,
    ),
    test(
        "off-cpu-reasons",
        "profiles",
        "asyncio_service_off_cpu_by_reason",
        180,
    ),
    test("asyncio-tasks", "tasks", "asyncio_3_11::lean", 240),
    test(
        "cgroup",
        "cgroup",
        "cgroup_members_before_during_and_moved_in",
        150,
    ),
    test(
        "gil-holder",
        "gil",
        "a_c_call_holding_the_gil_is_the_stall_cause",
        180,
    ),
    test(
        "node-js-frames",
        "node_js_names",
        "node_20_planted_stalls_name_js_functions",
        300,
    ),
];

/// The smoke checks, and the tests whose name contains `only`.
pub fn select(only: Option<&str>) -> Vec<&'static Check> {
    ALL.iter()
        .filter(|check| match (&check.kind, only) {
            (Kind::Test { name, .. }, Some(only)) => name.contains(only),
            _ => true,
        })
        .collect()
}

/// Seconds the selected checks may take, at most.
pub fn deadline(checks: &[&Check]) -> u64 {
    checks
        .iter()
        .map(|check| match check.kind {
            Kind::Test { timeout, .. } => u64::from(timeout),
            _ => 10,
        })
        .sum()
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The guest's script: guest.sh (mounts, helpers), the environment the
/// tests get, then a line per check. `binaries` maps a test binary's name
/// to its path.
pub fn script(
    checks: &[&Check],
    tracer: &Path,
    binaries: &BTreeMap<String, PathBuf>,
    env: &[(String, String)],
) -> String {
    let mut script = String::from(include_str!("guest.sh"));
    for (key, value) in env {
        let _ = writeln!(script, "export {key}={}", quote(Path::new(value)));
    }
    let _ = writeln!(script, "export TRACER_BIN={}", quote(tracer));
    for check in checks {
        let column = check.column;
        let _ = match &check.kind {
            Kind::Boot => writeln!(script, "check {column} boot"),
            Kind::Version => writeln!(script, "check {column} \"$TRACER_BIN\" --version"),
            Kind::Test {
                binary,
                name,
                timeout,
            } => {
                let path = binaries.get(*binary).map(|p| quote(p)).unwrap_or_default();
                writeln!(
                    script,
                    "check {column} within {timeout} {path} --exact {name} --test-threads=1"
                )
            }
        };
    }
    script
}

/// A check the guest never began.
const NOT_RUN: &str = "NOT RUN";
/// A check the guest began and never ended: it died or hung inside.
const CRASH: &str = "CRASH";

/// A check's outcome in one guest.
pub struct Outcome {
    pub status: &'static str,
    pub output: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.status == "PASS"
    }

    /// The guest ended (hung, killed) before this check did.
    pub fn guest_died(&self) -> bool {
        self.status == CRASH || self.status == NOT_RUN
    }
}

/// Reads each check's outcome from the guest's console.
pub fn outcomes(checks: &[&Check], console: &str) -> Vec<Outcome> {
    checks
        .iter()
        .map(|check| {
            let mut outcome = outcome(check, console);
            // A guest that never reached the checks: the last words of its
            // kernel and init instead.
            if matches!(check.kind, Kind::Boot) && outcome.status == NOT_RUN {
                let lines: Vec<&str> = console.lines().collect();
                let from = lines.len().saturating_sub(CONSOLE_TAIL);
                outcome.output = lines[from..].iter().map(|l| l.to_string()).collect();
            }
            outcome
        })
        .collect()
}

fn outcome(check: &Check, console: &str) -> Outcome {
    let begin = format!("{BEGIN}{}", check.column);
    let end = format!("{END}{} ", check.column);
    let mut lines = console.lines().map(|l| l.trim_end_matches('\r'));
    if !lines.any(|line| line == begin) {
        return Outcome {
            status: NOT_RUN,
            output: Vec::new(),
        };
    }
    let mut output = Vec::new();
    for line in lines {
        if let Some(code) = line.strip_prefix(&end) {
            let status = match code.trim() {
                "0" if matches!(check.kind, Kind::Test { .. })
                    && !output
                        .iter()
                        .any(|l: &String| l.contains("test result: ok. 1 passed")) =>
                {
                    "NO TEST"
                }
                "0" => "PASS",
                // Killed by the check's deadline.
                "137" => "TIMEOUT",
                _ => "FAIL",
            };
            return Outcome { status, output };
        }
        output.push(line.to_string());
    }
    // The guest died (or was killed) inside the check.
    Outcome {
        status: CRASH,
        output,
    }
}

/// The kernel × check table.
pub fn table(checks: &[&Check], rows: &[(String, Vec<Outcome>)]) -> String {
    let mut header = vec!["kernel".to_string()];
    header.extend(checks.iter().map(|c| c.column.to_string()));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(kernel, outcomes)| {
            let mut row = vec![kernel.clone()];
            row.extend(outcomes.iter().map(|o| o.status.to_string()));
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| row.get(i).map_or(0, String::len))
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in [header].iter().chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        let _ = writeln!(text, "{}", line.join("  ").trim_end());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_prints_the_markers() {
        let guest = include_str!("guest.sh");
        assert!(guest.contains(&format!("echo \"{BEGIN}$name\"")));
        assert!(guest.contains(&format!("echo \"{END}$name $?\"")));
    }

    #[test]
    fn a_test_passes_only_if_it_ran() {
        let check = test("c", "bin", "name", 1);
        let console =
            "@@tracer-vm begin c\r\ntest result: ok. 1 passed; 0 failed\r\n@@tracer-vm end c 0\r\n";
        assert_eq!(outcome(&check, console).status, "PASS");
        let console = "@@tracer-vm begin c\ntest result: ok. 0 passed\n@@tracer-vm end c 0\n";
        assert_eq!(outcome(&check, console).status, "NO TEST");
        assert_eq!(
            outcome(&check, "@@tracer-vm begin c\nverifier\n").status,
            "CRASH"
        );
        assert_eq!(outcome(&check, "").status, NOT_RUN);
        let failed = outcome(
            &check,
            "@@tracer-vm begin c\nerror\n@@tracer-vm end c 101\n",
        );
        assert_eq!((failed.status, failed.output.len()), ("FAIL", 1));
    }
}
