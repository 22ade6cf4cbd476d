//! `cargo xtask dist`: what users install, in target/dist/: the static
//! binary, a Python wheel carrying it (`pip install`), and a .deb with its
//! man page and shell completions. Each is checked as it is made; installing
//! them in other Debian releases is tested by tests/tests/dist.rs (run by
//! `cargo xtask test`, which builds them first).

pub mod binary;
mod deb;
mod metadata;
mod wheel;

use std::{fs, path::PathBuf, process::Command};

use anyhow::Context;

use crate::command::{output, workspace_root};

/// The name on PyPI and in Debian (both have another `tracer`); the command
/// it installs is `tracer`.
pub const NAME: &str = "event-loop-tracer";

/// What `dist` made, for the tests.
pub struct Artifacts {
    pub wheel: PathBuf,
    pub deb: PathBuf,
}

pub fn dist() -> anyhow::Result<Artifacts> {
    let built = binary::build()?;
    let package = metadata::tracer_package()?;
    let out = workspace_root().join("target/dist");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot remove {}", out.display()))?;
    }
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let binary = out.join("tracer");
    fs::copy(&built, &binary).with_context(|| format!("cannot copy {}", built.display()))?;
    let wheel = wheel::build(&binary, &package, &out)?;
    let deb = deb::build(&binary, &package, &out, source_date_epoch()?)?;
    for made in [&binary, &wheel, &deb] {
        let bytes = fs::metadata(made)?.len();
        eprintln!(
            "xtask: dist: {} ({:.1} MB)",
            made.display(),
            bytes as f64 / 1e6
        );
    }
    Ok(Artifacts { wheel, deb })
}

/// The time of the commit built: the packages' file times, so that the same
/// commit makes the same bytes.
fn source_date_epoch() -> anyhow::Result<u64> {
    let text = output(Command::new("git").arg("-C").arg(workspace_root()).args([
        "log",
        "-1",
        "--format=%ct",
    ]))
    .context("git log failed: dist needs a git checkout")?;
    text.trim()
        .parse()
        .with_context(|| format!("git log printed {text:?}, not a time"))
}
