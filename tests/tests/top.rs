//! `tracer top` in a real terminal (tmux, 160x48): an asyncio service
//! plants a stall and within 3 s the screen names its cause and its code
//! line; the keys sort, pause and quit; after `q` the shell has a sane
//! terminal back and `-o DIR` holds the reports. The screen is saved as
//! text and as a PNG under target/top/ (docs/top.png is one of these).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{
    Target, planted_stall_threshold, pyenv_python, ready_timeout, require_root,
    screenshot::terminal_png,
    slow_factor, timing_tolerance,
    tmux::{PROMPT, Tmux, have_tmux},
    tracer_bin,
};

const PLANTED_MS: f64 = 150.0;
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/planted_stalls.py");

/// Where the planted stall blocks, as the screen shows it: the function
/// and `targets/planted_stalls.py:LINE`, the line read from the script.
fn planted_code_line() -> String {
    let source = std::fs::read_to_string(SCRIPT).expect("read the target");
    let line = source
        .lines()
        .position(|l| l.contains("time.sleep(ms / 1000)"))
        .expect("the planted time.sleep")
        + 1;
    format!("stall (targets/planted_stalls.py:{line})")
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/top")
}

/// The screen line that holds `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

/// The shell's `top exited STATUS` line (not the command typed, which
/// holds the words too).
fn exit_line(screen: &str) -> Option<&str> {
    screen.lines().find(|l| l.starts_with("top exited "))
}

/// "150 ms" in a stall row: its length in milliseconds.
fn length_ms(row: &str) -> f64 {
    let words: Vec<&str> = row.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1] == "ms" && w[0].parse::<f64>().is_ok())
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no length in ms in {row:?}"))
}

#[test]
fn top_shows_a_planted_stall_and_quits_cleanly() {
    let test = "top_shows_a_planted_stall_and_quits_cleanly";
    require_root!(test);
    if !have_tmux(test) {
        return;
    }
    let mut target = Target::start(Command::new(pyenv_python("3.11")).arg(SCRIPT));
    let out = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::start(160, 48);
    tmux.type_line(&format!(
        "{} top --pid {} --threshold {} -o {}; echo \"top exited $?\"",
        tracer_bin().display(),
        target.pid,
        planted_stall_threshold(),
        out.path().display()
    ));
    // The first reading is on the screen: the title counts stalls.
    tmux.wait_for("live view", ready_timeout(), |s| {
        s.contains("tracer top") && s.contains("stalls 0") && s.contains("Event loops")
    });

    target.send(&format!("stalls 1 {PLANTED_MS}"));
    target.stdout.wait_for("planted 1", ready_timeout());
    let planted = Instant::now();
    let code = planted_code_line();
    let screen = tmux.wait_for(
        "stall with its cause and code line",
        Duration::from_secs(3) * slow_factor(),
        |s| line_with(s, &code).is_some_and(|l| l.contains("clock_nanosleep")),
    );
    let shown_after = planted.elapsed();
    println!(
        "the stall was on the screen {:.2} s after it ended",
        shown_after.as_secs_f64()
    );
    let row = line_with(&screen, &code).expect("stall row");
    println!("stall row: {}", row.trim_matches(['│', ' ']));
    assert!(row.contains("syscall"), "cause kind: {row}");
    assert!(row.contains("blocked"), "cause: {row}");
    let tolerance = timing_tolerance(0.10);
    let length = length_ms(row);
    assert!(
        (length - PLANTED_MS).abs() <= tolerance * PLANTED_MS,
        "stall length {length} ms, planted {PLANTED_MS} ms: {row}"
    );
    assert!(screen.contains("stalls 1"), "title:\n{screen}");
    let site = screen
        .lines()
        .find(|l| l.contains("clock_nanosleep") && !l.contains("blocked"))
        .map(str::to_string);
    let site = site.unwrap_or_else(|| panic!("no blocking site row:\n{screen}"));
    assert!(site.contains("stall (targets/planted_sta"), "site: {site}");

    // The screen as it is, for the docs and CI's artifacts.
    let dir = artifacts();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join("top-screen.txt"), &screen).expect("save capture");
    let ansi = tmux.screen_ansi();
    std::fs::write(dir.join("top-screen.ans"), &ansi).expect("save capture");
    let png = terminal_png(&ansi, &dir, "top", 1340, 880);
    println!("screenshot: {}", png.display());

    // s: the loops sorted by the next key; p: paused, and back.
    tmux.keys("s");
    tmux.wait_for("sort by p99", Duration::from_secs(2), |s| {
        s.contains("by p99 lag")
    });
    tmux.keys("p");
    tmux.wait_for("pause", Duration::from_secs(2), |s| s.contains("PAUSED"));
    tmux.keys("Space");
    tmux.wait_for("resume", Duration::from_secs(2), |s| !s.contains("PAUSED"));

    tmux.keys("q");
    let after = tmux.wait_for("the shell back", ready_timeout(), |s| {
        exit_line(s).is_some()
    });
    assert_eq!(exit_line(&after), Some("top exited 0"), "{after}");
    assert!(
        !after.contains("Event loops"),
        "the live view is still on the screen:\n{after}"
    );
    assert!(
        after.contains("tracer: quit (q) after"),
        "no closing line:\n{after}"
    );
    assert!(after.trim_end().ends_with(PROMPT), "no prompt:\n{after}");
    // The terminal is out of raw mode: the line discipline echoes and
    // edits lines again.
    tmux.type_line("stty -a | tr ' ;' '\\n\\n' | grep -x -e echo -e icanon -e isig | sort | tr '\\n' ' '; echo");
    let stty = tmux.wait_for("stty", Duration::from_secs(5), |s| {
        s.contains("echo icanon isig")
    });
    assert!(stty.contains("echo icanon isig"), "{stty}");

    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("report.json")).expect("report.json in -o DIR"),
    )
    .expect("valid JSON");
    let stalls: Vec<&Value> = report["stalls"]
        .as_array()
        .expect("stalls")
        .iter()
        .filter(|s| s["cause"]["syscall"] == "clock_nanosleep")
        .collect();
    assert_eq!(stalls.len(), 1, "the report's planted stalls");
    assert_eq!(report["ended_by"], "quit (q)");
    for file in ["report.txt", "timeline.json", "cpu.svg"] {
        assert!(out.path().join(file).exists(), "{file} missing in -o DIR");
    }
}

/// The first line of the demo that holds `code`, as `name (demo/FILE:LINE)`.
fn demo_line(name: &str, code: &str) -> String {
    let source = std::fs::read_to_string(DEMO).expect("read the demo");
    let line = source
        .lines()
        .position(|l| l.contains(code))
        .unwrap_or_else(|| panic!("{code:?} not in the demo"))
        + 1;
    format!("{name} (demo/blocking_service.py:{line})")
}

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/blocking_service.py");

/// The demo service's four blockers under `tracer top` for a full window:
/// the stalls' code lines and the blocking sites are on the screen. Its
/// screenshot is docs/top.png.
#[test]
fn top_shows_the_demo_services_blockers() {
    let test = "top_shows_the_demo_services_blockers";
    require_root!(test);
    if !have_tmux(test) {
        return;
    }
    let target = Target::start(Command::new(pyenv_python("3.11")).args([DEMO, "--warm"]));
    let tmux = Tmux::start(160, 48);
    tmux.type_line(&format!(
        "{} top --pid {}; echo \"top exited $?\"",
        tracer_bin().display(),
        target.pid
    ));
    let sleep = demo_line("fetch_profile", "time.sleep(0.25)  # blocks");
    let recv = demo_line("query_upstream", "return conn.recv(64)");
    let screen = tmux.wait_for(
        "the blockers over a full window",
        ready_timeout() + Duration::from_secs(15),
        |s| {
            s.contains("(last 10 s")
                && line_with(s, &sleep).is_some_and(|l| l.contains("blocked 25"))
                && line_with(s, &recv).is_some_and(|l| l.contains("in recvfrom on tcp:127.0.0.1:"))
                && s.lines()
                    .any(|l| l.contains("│wait4 ") && l.contains("Popen"))
        },
    );
    let dir = artifacts();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join("demo-screen.txt"), &screen).expect("save capture");
    let png = terminal_png(&tmux.screen_ansi(), &dir, "demo", 1340, 880);
    println!("screenshot: {}", png.display());
    tmux.keys("q");
    let after = tmux.wait_for("the shell back", ready_timeout(), |s| {
        exit_line(s).is_some()
    });
    assert_eq!(exit_line(&after), Some("top exited 0"), "{after}");
    assert!(
        after.contains("no report written (-o DIR keeps them)"),
        "{after}"
    );
}

#[test]
fn top_ends_at_its_duration_and_writes_the_reports() {
    let test = "top_ends_at_its_duration_and_writes_the_reports";
    require_root!(test);
    if !have_tmux(test) {
        return;
    }
    let target = Target::start(Command::new(pyenv_python("3.11")).arg(SCRIPT));
    let out = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::start(100, 30);
    tmux.type_line(&format!(
        "{} top --pid {} -d 3s -o {}; echo \"top exited $?\"",
        tracer_bin().display(),
        target.pid,
        out.path().display()
    ));
    let after = tmux.wait_for("the end of the duration", ready_timeout(), |s| {
        exit_line(s).is_some()
    });
    assert_eq!(exit_line(&after), Some("top exited 0"), "{after}");
    assert!(after.contains("tracer: duration elapsed after"), "{after}");
    assert!(!after.contains("Event loops"), "{after}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("report.json")).expect("report.json"),
    )
    .expect("valid JSON");
    assert_eq!(report["ended_by"], "duration elapsed");
    assert_eq!(report["target"]["pid"], target.pid);
}

#[test]
fn top_gives_the_terminal_back_when_the_target_exits() {
    let test = "top_gives_the_terminal_back_when_the_target_exits";
    require_root!(test);
    if !have_tmux(test) {
        return;
    }
    let target = Target::start(Command::new(pyenv_python("3.11")).arg(SCRIPT));
    let tmux = Tmux::start(100, 30);
    tmux.type_line(&format!(
        "{} top --pid {}; echo \"top exited $?\"",
        tracer_bin().display(),
        target.pid
    ));
    tmux.wait_for("live view", ready_timeout(), |s| s.contains("stalls 0"));
    drop(target);
    let after = tmux.wait_for("the shell back", ready_timeout(), |s| {
        exit_line(s).is_some()
    });
    assert_eq!(exit_line(&after), Some("top exited 0"), "{after}");
    assert!(after.contains("tracer: target exited after"), "{after}");
    assert!(!after.contains("Event loops"), "{after}");
}

#[test]
fn top_needs_a_terminal() {
    // No root needed: the terminal is checked before anything is traced.
    let out = Command::new(tracer_bin())
        .args(["top", "--pid", &std::process::id().to_string()])
        .output()
        .expect("run tracer top");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tracer: error: tracer top needs a terminal, and stdout is not one"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
