//! Roots of other Debian releases, made by `debootstrap` and cached outside
//! the clone: a target run in one (with `chroot`) has its interpreter and
//! libraries only behind `/proc/PID/root`, as a target in a container does.
//! Sid's root brings CPython 3.14, built for a newer glibc than this
//! machine's.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;

use crate::command::run;

/// Made roots, kept across clones and runs.
const CACHE_DIR: &str = "/var/cache/tracer-roots";

/// A root to make: a Debian suite and the packages it needs on top of a
/// minimal system.
pub struct RootSpec {
    pub suite: &'static str,
    pub packages: &'static [&'static str],
    /// A file the root must have once made (its interpreter, say).
    pub check: &'static str,
}

/// Debian unstable with CPython 3.14.
pub const SID_PYTHON314: RootSpec = RootSpec {
    suite: "sid",
    packages: &["python3.14"],
    check: "usr/bin/python3.14",
};

/// The root of `spec`, made unless cached. It is made beside its final
/// place and renamed into it, so an interrupted run leaves no half root to
/// be taken for a whole one.
pub fn ensure(spec: &RootSpec) -> anyhow::Result<PathBuf> {
    let cache = Path::new(CACHE_DIR);
    let root = cache.join(spec.suite);
    if root.join(spec.check).exists() {
        return Ok(root);
    }
    crate::apt::ensure(&[("/usr/sbin/debootstrap", "debootstrap")], &[])?;
    fs::create_dir_all(cache).with_context(|| format!("cannot create {CACHE_DIR}"))?;
    let building = cache.join(format!("{}.partial", spec.suite));
    if building.exists() {
        fs::remove_dir_all(&building)
            .with_context(|| format!("cannot remove {}", building.display()))?;
    }
    let mirror = crate::debian_archive::mirror()?;
    eprintln!(
        "xtask: debootstrap {} with {} into {}",
        spec.suite,
        spec.packages.join(" "),
        root.display()
    );
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "--include"])
        .arg(spec.packages.join(","))
        .arg(spec.suite)
        .arg(&building)
        .arg(&mirror)
        // Progress to stderr: stdout is for results.
        .stdout(std::io::stderr()))?;
    anyhow::ensure!(
        building.join(spec.check).exists(),
        "debootstrap made {} without {}",
        building.display(),
        spec.check
    );
    fs::rename(&building, &root)
        .with_context(|| format!("cannot move {} to {}", building.display(), root.display()))?;
    Ok(root)
}
