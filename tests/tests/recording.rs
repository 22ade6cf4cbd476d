//! Recordings: `--record FILE` on a live trace, `tracer report FILE` later —
//! the same report, without root; damaged files: one line and exit status 1.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use serde_json::Value;
use tracer_tests::{Target, Tracer, pyenv_python, require_root, tracer_bin};

/// A small recording every tracer of this format reads (kept up to date by
/// the tracer's unit tests): pid 4242, 2 stalls.
fn sample_recording() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tracer/src/recording/testdata/sample.rec"
    );
    fs::read(path).expect("the sample recording")
}

fn tracer(args: &[&str]) -> Output {
    Command::new(tracer_bin())
        .args(args)
        .output()
        .expect("run tracer")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn live_recording_renders_the_same_report() {
    require_root!("live_recording_renders_the_same_report");
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("service.rec");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/blocking_service.py");
    let mut target =
        Target::start(Command::new(pyenv_python("3.11")).args([script, "--rounds", "1", "--wait"]));
    let live = Tracer::attach(
        target.pid,
        &["--all-syscalls", "--record", recording.to_str().unwrap()],
    );
    target.go();
    assert!(target.wait(Duration::from_secs(60)).success());
    let live = live.finish();
    assert!(live.status.success(), "tracer failed: {:?}", live.stderr);
    assert!(
        live.report["stalls"]
            .as_array()
            .is_some_and(|s| s.len() >= 4),
        "the demo's 4 blockers are not all there: {}",
        live.report["stalls"]
    );

    let again = dir.path().join("again.json");
    let output = tracer(&[
        "report",
        recording.to_str().unwrap(),
        "--json",
        again.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(read_json(&again), live.report);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("STALLS") && text.contains("recvfrom"),
        "{text}"
    );

    let meta = fs::symlink_metadata(&recording).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    assert!(meta.len() < 1 << 20, "{} bytes", meta.len());
}

#[test]
fn report_needs_no_root() {
    require_root!("report_needs_no_root");
    // A directory and a recording that user nobody can read, and an output
    // directory it can write to.
    let dir = tempfile::tempdir().unwrap();
    let open = |path: &Path, mode| fs::set_permissions(path, fs::Permissions::from_mode(mode));
    open(dir.path(), 0o755).unwrap();
    let recording = dir.path().join("sample.rec");
    fs::write(&recording, sample_recording()).unwrap();
    open(&recording, 0o644).unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    open(&out, 0o777).unwrap();

    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(tracer_bin())
        .args(["report", "-q", "-o"])
        .args([&out, &recording])
        .output()
        .expect("run setpriv");
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "-q printed: {output:?}");
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["target"]["pid"], 4242);
    assert_eq!(report["stalls"].as_array().map(Vec::len), Some(2));
    for name in ["report.txt", "timeline.json"] {
        let meta = fs::metadata(out.join(name)).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            65534,
            "{name} is not nobody's"
        );
    }
}

/// One line on stderr, exit status 1, no panic.
fn assert_fails(path: &Path, message: &str) {
    let output = tracer(&["report", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(message), "{message:?} not in {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("tracer: error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn damaged_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| -> PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    };
    let good = sample_recording();
    let output = tracer(&["report", file("good.rec", &good).to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");

    let cut = file("cut.rec", &good[..good.len() / 2]);
    assert_fails(&cut, "is truncated");
    assert_fails(&file("header.rec", &good[..10]), "is truncated");

    let mut corrupt = good.clone();
    let middle = 28 + (corrupt.len() - 28) / 2;
    corrupt[middle] ^= 0xff;
    assert_fails(&file("corrupt.rec", &corrupt), "is corrupt");

    let mut future = good.clone();
    future[8..12].copy_from_slice(&99u32.to_le_bytes());
    assert_fails(
        &file("future.rec", &future),
        "recorded by a newer tracer (recording format 99",
    );

    let not = "not a tracer recording";
    assert_fails(&file("report.json", b"{\"version\": 1}"), not);
    assert_fails(&file("empty.rec", b""), not);
    assert_fails(Path::new("/dev/zero"), not);
    assert_fails(&dir.path().join("missing.rec"), "cannot read the recording");
    assert_fails(dir.path(), "Is a directory");
}

#[test]
fn command_line() {
    let output = tracer(&["report"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let output = tracer(&["--pid", "1", "report", "x.rec"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let help = tracer(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for usage in [
        "sudo tracer [OPTIONS] --pid <PID>",
        "tracer report [OPTIONS] <FILE>",
        "--record <FILE>",
        "tracer report api.rec -o out/",
    ] {
        assert!(help.contains(usage), "{usage:?} not in {help}");
    }
    let help = tracer(&["report", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("tracer report api.rec"));
}
