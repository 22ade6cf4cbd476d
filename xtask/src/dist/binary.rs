//! The static binary: tracer for x86_64-unknown-linux-musl, linked with
//! musl's libc into one file that runs on any x86-64 Linux, whatever its
//! libc. The kernel programs are embedded by tracer/build.rs as always
//! (they are built for the BPF target, so the host target does not matter).

use std::{fs, path::Path, path::PathBuf, process::Command};

use anyhow::{Context, bail, ensure};

use crate::command::{cargo, output, run, workspace_root};

const TARGET: &str = "x86_64-unknown-linux-musl";
/// Release builds drop debug info and keep the symbol table (tracer's own
/// frames in backtraces); above this, something unexpected was linked in.
const MAX_BYTES: u64 = 15_000_000;

/// Builds the static binary, checks it and returns its path.
pub fn build() -> anyhow::Result<PathBuf> {
    ensure_target()?;
    // Paths of dependencies' sources end up in panic messages: under a fixed
    // name, the bytes do not depend on where CARGO_HOME is.
    let remap = format!(
        "--remap-path-prefix={}=/cargo",
        crate::setup::cargo_home().display()
    );
    run(cargo()
        .args(["build", "--release", "--locked", "--package", "tracer"])
        .args(["--target", TARGET])
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS", remap))?;
    let binary = workspace_root()
        .join("target")
        .join(TARGET)
        .join("release/tracer");
    check(&binary)?;
    Ok(binary)
}

fn ensure_target() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("rustup target list failed")?;
    if installed.lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    eprintln!("xtask: rustup target add {TARGET}");
    run(Command::new("rustup").args(["target", "add", TARGET]))
}

/// Static (no loader, no libraries), small enough, and `--version` names
/// the commit and the kernels.
fn check(binary: &Path) -> anyhow::Result<()> {
    ensure_static(binary)?;
    let bytes = fs::metadata(binary)
        .with_context(|| format!("cannot stat {}", binary.display()))?
        .len();
    ensure!(
        bytes < MAX_BYTES,
        "{} is {bytes} bytes, over {MAX_BYTES}",
        binary.display()
    );
    let version = output(Command::new(binary).arg("--version"))
        .with_context(|| format!("{} --version failed", binary.display()))?;
    for expected in ["(commit ", "kernels: Linux "] {
        ensure!(
            version.contains(expected),
            "{} --version lacks {expected:?}: {version}",
            binary.display()
        );
    }
    Ok(())
}

/// `file` says the binary is statically linked and `ldd` that it is not a
/// dynamic executable: it needs nothing from the machine it runs on.
pub fn ensure_static(binary: &Path) -> anyhow::Result<()> {
    let file = output(Command::new("file").arg("--brief").arg(binary))
        .with_context(|| format!("file {} failed", binary.display()))?;
    if !file.contains("statically linked") && !file.contains("static-pie linked") {
        bail!(
            "{} is not statically linked: {}",
            binary.display(),
            file.trim()
        );
    }
    let ldd = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd")?;
    let said = String::from_utf8_lossy(&ldd.stdout) + String::from_utf8_lossy(&ldd.stderr);
    ensure!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd {} lists libraries: {said}",
        binary.display()
    );
    Ok(())
}
