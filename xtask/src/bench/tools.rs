//! What the benchmarks need, installed only when missing.

use std::{
    fs,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

use crate::command::{output, run, workspace_root};

/// Installs wrk, strace, perf and aiohttp if they are missing; fails if gcc
/// or taskset are (every machine of this kind has them).
pub fn ensure() -> anyhow::Result<()> {
    for (tool, package) in [("gcc", "gcc"), ("taskset", "util-linux")] {
        if !on_path(tool) {
            bail!("{tool} is missing: install it with `apt-get install -y {package}`");
        }
    }
    let missing: Vec<&str> = [("wrk", "wrk"), ("strace", "strace"), ("perf", "linux-perf")]
        .into_iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| package)
        .collect();
    if !missing.is_empty() {
        let packages = missing.join(" ");
        // apt-get finds no package before the first update on a fresh machine.
        eprintln!("bench: installing {packages} (apt-get update; apt-get install -y {packages})");
        // Their progress on stdout is noise here; errors go to stderr.
        run(Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null()))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null()))?;
    }
    crate::python::ensure_packages(&["aiohttp"])?;
    Ok(())
}

fn on_path(tool: &str) -> bool {
    output(Command::new("sh").args(["-c", &format!("command -v {tool}")])).is_some()
}

/// Why `perf trace` cannot run here, if it cannot (e.g. no tracefs, or a
/// kernel without syscall tracepoints); then its rows are skipped.
pub fn perf_trace_unusable() -> Option<String> {
    let result = Command::new("timeout")
        .args(["10", "perf", "trace", "-s", "--", "true"])
        .output();
    match result {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`perf trace -s -- true` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(error) => Some(format!("cannot run perf: {error}")),
    }
}

/// Compiles bench/getppid_loop.c into target/bench/.
pub fn build_getppid_loop() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let dir = root.join("target/bench");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let binary = dir.join("getppid_loop");
    run(Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg(root.join("bench/getppid_loop.c")))?;
    Ok(binary)
}
