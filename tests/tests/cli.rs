//! Bad input: one clear line on stderr and the documented exit status, never
//! a panic. Exit status 2: the command line is wrong; 1: tracing failed.

use std::process::{Command, Output};

use tracer_tests::{require_root, tracer_bin};

fn tracer(args: &[&str]) -> Output {
    Command::new(tracer_bin())
        .args(args)
        .output()
        .expect("run tracer")
}

/// The exit status, and one error line on stderr that has `message` (clap
/// adds a hint line to its usage errors: "For more information, try
/// '--help'.").
fn assert_error(output: &Output, status: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(status), "stderr: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(message), "{message:?} not in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    assert_error(&tracer(&[]), 2, "nothing to trace");
    assert_error(&tracer(&["--pid", "abc"]), 2, "invalid value 'abc'");
    assert_error(&tracer(&["--pid", "1", "-d", "10"]), 2, "has no unit");
    assert_error(
        &tracer(&["--pid", "1", "-d", "ten"]),
        2,
        "is not a duration",
    );
    assert_error(
        &tracer(&["--pid", "1", "-d", "0s"]),
        2,
        "--duration must be above 0",
    );
    assert_error(
        &tracer(&["--pid", "1", "--threshold", "0ms"]),
        2,
        "--threshold must be between",
    );
    assert_error(&tracer(&["--pid", "1", "--", "ls"]), 2, "not several");
    assert_error(&tracer(&["--bogus"]), 2, "unexpected argument");
    assert_error(
        &tracer(&["--pid", "1", "--group-by", "nonsense"]),
        2,
        "invalid value 'nonsense' for '--group-by <BY>'",
    );
    assert_error(
        &tracer(&["--pid", "1", "-o", "out", "--rotate", "0"]),
        2,
        "has no unit",
    );
    assert_error(
        &tracer(&["--pid", "1", "-o", "out", "--rotate", "0s"]),
        2,
        "--rotate must be at least 1s",
    );
    assert_error(
        &tracer(&["--pid", "1", "--rotate", "10m"]),
        2,
        "--rotate needs --output DIR",
    );
    assert_error(
        &tracer(&["--pid", "1", "--metrics", "9464"]),
        2,
        "invalid value '9464'",
    );
}

#[test]
fn help_has_examples() {
    let output = tracer(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Examples:") && help.contains("sudo tracer --pid 4242"),
        "{help}"
    );
}

#[test]
fn runtime_errors_exit_1() {
    require_root!("runtime_errors_exit_1");
    assert_error(
        &tracer(&["--pid", "2147483647"]),
        1,
        "no process with pid 2147483647",
    );
    assert_error(&tracer(&["--pid", "2"]), 1, "is a kernel thread (kthreadd)");
    assert_error(
        &tracer(&["--", "no-such-command-xyz"]),
        1,
        "command not found: no-such-command-xyz",
    );
    assert_error(
        &tracer(&["--cgroup", "/no-such-cgroup-xyz"]),
        1,
        "--cgroup /no-such-cgroup-xyz: no such cgroup v2 directory",
    );
    assert_error(
        &tracer(&["--pid", "1", "--output", "/proc/version"]),
        1,
        "exists and is not a directory",
    );
    assert_error(
        &tracer(&["--pid", "1", "--json", "/no/such/dir/report.json"]),
        1,
        "cannot write /no/such/dir/report.json",
    );
}

#[test]
fn unprivileged_user_is_told_what_to_do() {
    require_root!("unprivileged_user_is_told_what_to_do");
    // Run as nobody, without capabilities.
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(tracer_bin())
        .args(["--pid", "1"])
        .output()
        .expect("run setpriv");
    assert_error(
        &output,
        1,
        "tracer needs root, or the capabilities CAP_BPF, CAP_PERFMON",
    );
    assert_error(&output, 1, "setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep");
}

/// A pid no process has now.
fn missing_pid() -> u32 {
    (999_999..)
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .expect("a free pid")
}

#[test]
fn bad_pid_lists() {
    assert_error(
        &tracer(&["-p", "1,notanumber"]),
        2,
        "invalid value 'notanumber'",
    );
    assert_error(
        &tracer(&["-p", "1,0"]),
        2,
        "--pid must be a process id above 0",
    );
    require_root!("bad_pid_lists");
    let missing = missing_pid();
    let message = format!("no process with pid {missing}");
    assert_error(&tracer(&["-p", &missing.to_string()]), 1, &message);
    // A missing pid among live ones is named; nothing is traced.
    let list = format!("1,{missing}");
    assert_error(&tracer(&["-p", &list]), 1, &message);
}
