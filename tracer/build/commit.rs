//! The commit `tracer --version` names: $TRACER_COMMIT if set (a build from
//! a source archive), else `git rev-parse` of the checkout, else `unknown`.
//! Cargo reruns the build script when HEAD or its branch moves.

use std::{path::Path, process::Command};

pub fn emit(manifest_dir: &Path) {
    println!("cargo:rerun-if-env-changed=TRACER_COMMIT");
    let commit = std::env::var("TRACER_COMMIT")
        .ok()
        .or_else(|| git(manifest_dir, &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TRACER_COMMIT={commit}");
    for watched in ["HEAD", "packed-refs"] {
        watch(manifest_dir, watched);
    }
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch(manifest_dir, &branch);
    }
}

/// Reruns the build script when this file of the git directory changes.
fn watch(manifest_dir: &Path, name: &str) {
    if let Some(path) = git(
        manifest_dir,
        &["rev-parse", "--path-format=absolute", "--git-path", name],
    ) && Path::new(&path).exists()
    {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
