//! Roots of other Debian releases, made by `debootstrap` and cached outside
//! the clone: a target run in one (with `chroot`) has its interpreter and
//! libraries only behind `/proc/PID/root`, as a target in a container does.
//! Sid's root brings CPython 3.14, built for a newer glibc than this
//! machine's; bookworm's, Debian 12 as users run it, to install the
//! packages of `cargo xtask dist` in.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::command::run;

/// Made roots, kept across clones and runs.
const CACHE_DIR: &str = "/var/cache/tracer-roots";

/// A root to make: a Debian suite and the packages it needs on top of a
/// minimal system.
pub struct RootSpec {
    pub suite: &'static str,
    pub packages: &'static [&'static str],
    /// Files the root must have once made (its interpreter, say): a cached
    /// root without one of them was made for fewer packages, and is made again.
    pub checks: &'static [&'static str],
}

/// Debian unstable with CPython 3.14, and venv to install the wheel in.
pub const SID_PYTHON314: RootSpec = RootSpec {
    suite: "sid",
    packages: &["python3.14", "python3.14-venv"],
    checks: &[
        "usr/bin/python3.14",
        "usr/lib/python3.14/ensurepip/__init__.py",
    ],
};

/// Debian 12 with its CPython 3.11, venv, and man to read the .deb's page.
/// python3-distutils is named because debootstrap does not resolve virtual
/// packages: python3.11-venv needs python3.11-distutils, which it provides.
pub const BOOKWORM_PYTHON311: RootSpec = RootSpec {
    suite: "bookworm",
    packages: &[
        "python3.11",
        "python3.11-venv",
        "python3-distutils",
        "man-db",
    ],
    checks: &[
        "usr/bin/python3.11",
        "usr/lib/python3.11/ensurepip/__init__.py",
        "usr/bin/man",
    ],
};

/// The root of `spec`, made unless cached. It is made beside its final
/// place and renamed into it, so an interrupted run leaves no half root to
/// be taken for a whole one.
pub fn ensure(spec: &RootSpec) -> anyhow::Result<PathBuf> {
    let cache = Path::new(CACHE_DIR);
    let root = cache.join(spec.suite);
    if is_complete(&root, spec) {
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
    if let Some(missing) = spec.checks.iter().find(|c| !building.join(c).exists()) {
        bail!("debootstrap made {} without {missing}", building.display());
    }
    if root.exists() {
        remove_outdated(&root)?;
    }
    fs::rename(&building, &root)
        .with_context(|| format!("cannot move {} to {}", building.display(), root.display()))?;
    Ok(root)
}

fn is_complete(root: &Path, spec: &RootSpec) -> bool {
    spec.checks.iter().all(|check| root.join(check).exists())
}

/// Removes a root made for fewer packages, unless something is mounted in
/// it (a test killed before it could unmount): removing it would then delete
/// the host's own files.
fn remove_outdated(root: &Path) -> anyhow::Result<()> {
    let mounts =
        fs::read_to_string("/proc/self/mounts").context("cannot read /proc/self/mounts")?;
    let prefix = format!("{}/", root.display());
    if let Some(mount) = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .find(|point| point.starts_with(&prefix))
    {
        bail!(
            "{mount} is mounted: unmount it (umount -R {mount}) before {} is made again",
            root.display()
        );
    }
    eprintln!(
        "xtask: replacing {}, made for fewer packages",
        root.display()
    );
    fs::remove_dir_all(root).with_context(|| format!("cannot remove {}", root.display()))
}

/// Makes CPython 3.`minor` of `root` able to import `package`, from its
/// binary wheel for that version (pip is not in a minimal root, and
/// Debian's python3.14 has no ensurepip): downloaded by the machine's pip
/// into the cache, unpacked into the root's site directory. Kept with the
/// cached root.
pub fn ensure_wheel(root: &Path, minor: u32, package: &str) -> anyhow::Result<()> {
    let site = root.join(format!("usr/local/lib/python3.{minor}/dist-packages"));
    if site.join(package).exists() {
        return Ok(());
    }
    let download = Path::new(CACHE_DIR).join(format!("wheels-3.{minor}"));
    fs::create_dir_all(&download)
        .with_context(|| format!("cannot create {}", download.display()))?;
    eprintln!(
        "xtask: installing {package} for Python 3.{minor} into {}",
        site.display()
    );
    let version = format!("3.{minor}");
    let abi = format!("cp3{minor}");
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps"])
        .args(["--only-binary=:all:", "--implementation", "cp"])
        .args(["--python-version", &version, "--abi", &abi])
        .args(["--platform", "manylinux_2_28_x86_64"])
        .args(["--platform", "manylinux_2_17_x86_64"])
        .args(["--platform", "manylinux2014_x86_64"])
        .arg("--dest")
        .arg(&download)
        .arg(package))?;
    let wheel = fs::read_dir(&download)?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&format!("{package}-")) && name.ends_with(".whl")
        })
        .with_context(|| format!("pip downloaded no wheel of {package} for Python 3.{minor}"))?;
    fs::create_dir_all(&site).with_context(|| format!("cannot create {}", site.display()))?;
    // A wheel is a zip file laid out as the site directory wants it.
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&site))?;
    anyhow::ensure!(
        site.join(package).exists(),
        "{} has no {package} after unpacking {}",
        site.display(),
        wheel.display()
    );
    Ok(())
}
