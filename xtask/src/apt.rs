//! Debian packages the tasks need, installed with the machine's own apt when
//! a file they provide is missing (a fresh machine has none of them).

use std::{path::Path, process::Command};

use anyhow::bail;

use crate::command::run;

/// Installs the package of each (file, package) whose file is missing, and
/// checks that the files are there afterwards. `extra` packages are
/// installed along with them (ones whose presence a file cannot tell).
pub fn ensure(needed: &[(&str, &str)], extra: &[&str]) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = needed
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .map(|(_, package)| *package)
        .collect();
    missing.extend(extra);
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    if install(&missing).is_err() {
        // A fresh machine may have no package lists yet.
        run(Command::new("apt-get")
            .arg("update")
            .stdout(std::io::stderr()))?;
        install(&missing)?;
    }
    if let Some((file, _)) = needed.iter().find(|(file, _)| !Path::new(file).exists()) {
        bail!("{file} is still missing after apt-get install");
    }
    Ok(())
}

fn install(packages: &[&str]) -> anyhow::Result<()> {
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        // Progress to stderr: stdout is for results.
        .stdout(std::io::stderr()))
}
