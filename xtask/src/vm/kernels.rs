//! Debian's cloud kernels (`linux-image-*-cloud-amd64-unsigned`): found and
//! downloaded with a private apt configuration (the machine's own sources
//! are never touched), verified, extracted, and cached outside the clone in
//! [`CACHE_DIR`], so a second run needs no network.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::command::{output, run};

/// Downloads and extracted kernels, kept across clones and runs.
pub const CACHE_DIR: &str = "/var/cache/tracer-vm";

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A kernel of the matrix: its version prefix and the suite that ships it.
pub struct KernelSpec {
    pub name: &'static str,
    suite: &'static str,
}

pub const MATRIX: [KernelSpec; 3] = [
    KernelSpec {
        name: "5.10",
        suite: "bullseye",
    },
    KernelSpec {
        name: "6.1",
        suite: "bookworm",
    },
    KernelSpec {
        name: "6.12",
        suite: "trixie",
    },
];

/// An extracted kernel package.
pub struct Kernel {
    pub name: &'static str,
    /// e.g. `6.1.0-50-cloud-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `lib/modules/RELEASE` of the package.
    pub modules: PathBuf,
}

/// The kernels of `specs`, downloaded and extracted unless cached.
pub fn fetch(specs: &[&KernelSpec]) -> anyhow::Result<Vec<Kernel>> {
    let cache = Path::new(CACHE_DIR);
    let debs = cache.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    // The private lists are updated once, and only if a kernel is missing.
    let mut updated = false;
    let mut kernels = Vec::new();
    for spec in specs {
        let deb = match cached_deb(&debs, spec.name)? {
            Some(deb) => deb,
            None => {
                if !updated {
                    update(cache)?;
                    updated = true;
                }
                download(cache, &debs, spec)?
            }
        };
        kernels.push(extract(cache, spec.name, &deb)?);
    }
    Ok(kernels)
}

fn extract(cache: &Path, name: &'static str, deb: &Path) -> anyhow::Result<Kernel> {
    let stem = deb
        .file_stem()
        .context("a .deb without a name")?
        .to_string_lossy()
        .into_owned();
    let root = cache.join("kernels").join(&stem);
    // The marker is written last: a half-extracted tree is redone.
    let done = root.join(".extracted");
    if !done.exists() {
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root))?;
        fs::write(&done, b"").with_context(|| format!("cannot write {}", done.display()))?;
    }
    locate(name, &root)
}

/// `linux-image-NAME.*-cloud-amd64-unsigned_*.deb` already in `debs` and
/// readable by dpkg-deb (a truncated download is deleted).
fn cached_deb(debs: &Path, name: &str) -> anyhow::Result<Option<PathBuf>> {
    let prefix = format!("linux-image-{name}.");
    let mut found = Vec::new();
    for entry in fs::read_dir(debs).with_context(|| format!("cannot list {}", debs.display()))? {
        let path = entry?.path();
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        if file.starts_with(&prefix)
            && file.ends_with(".deb")
            && file.contains("-cloud-amd64-unsigned_")
        {
            if verified(&path) {
                found.push(path);
            } else {
                eprintln!(
                    "vm-test: {} is damaged: downloading it again",
                    path.display()
                );
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
    }
    found.sort_by_key(|p| version_key(&p.to_string_lossy()));
    Ok(found.pop())
}

fn verified(deb: &Path) -> bool {
    output(Command::new("dpkg-deb").arg("--info").arg(deb)).is_some()
}

/// apt-get and apt-cache, with every path of their state in `cache/apt`.
fn apt(cache: &Path, tool: &str) -> Command {
    let dir = cache.join("apt");
    let mut command = Command::new(tool);
    for (option, path) in [
        ("Dir::Etc::SourceList", dir.join("sources.list")),
        ("Dir::Etc::SourceParts", PathBuf::from("/dev/null")),
        ("Dir::State::Lists", dir.join("lists")),
        ("Dir::State::Status", dir.join("status")),
        ("Dir::Cache", dir.join("cache")),
    ] {
        command
            .arg("-o")
            .arg(format!("{option}={}", path.display()));
    }
    command.args([
        "-o",
        "APT::Architecture=amd64",
        "-o",
        "APT::Architectures::=amd64",
        "-o",
        "Acquire::Languages=none",
        // Our own lists need no lock on the machine's apt.
        "-o",
        "Debug::NoLocking=1",
        // Downloads land in a root-owned directory _apt cannot write.
        "-o",
        "APT::Sandbox::User=root",
        "-q",
    ]);
    command
}

/// Writes the private sources (every suite of the matrix) and updates them.
fn update(cache: &Path) -> anyhow::Result<()> {
    let dir = cache.join("apt");
    for sub in ["lists/partial", "cache/archives/partial"] {
        let path = dir.join(sub);
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let mirror = crate::debian_archive::mirror()?;
    let sources: String = MATRIX
        .iter()
        .map(|k| format!("deb [signed-by={KEYRING}] {mirror} {} main\n", k.suite))
        .collect();
    fs::write(dir.join("sources.list"), sources)
        .context("cannot write the private sources.list")?;
    let status = dir.join("status");
    if !status.exists() {
        fs::write(&status, b"").context("cannot create the private dpkg status")?;
    }
    eprintln!(
        "vm-test: apt-get update (private lists in {})",
        dir.display()
    );
    // Progress to stderr: stdout is for the table.
    run(apt(cache, "apt-get")
        .arg("update")
        .stdout(std::io::stderr()))
}

/// The newest `linux-image-NAME.*-cloud-amd64-unsigned` of the (updated)
/// private lists, downloaded into `debs`.
fn download(cache: &Path, debs: &Path, spec: &KernelSpec) -> anyhow::Result<PathBuf> {
    let pattern = format!(
        "^linux-image-{}\\.[0-9].*-cloud-amd64-unsigned$",
        spec.name.replace('.', "\\.")
    );
    let found = output(apt(cache, "apt-cache").args(["search", "--names-only", &pattern]))
        .with_context(|| format!("apt-cache search {pattern} failed"))?;
    let package = found
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .max_by_key(|name| version_key(name))
        .with_context(|| format!("no {pattern} in Debian {}", spec.suite))?
        .to_string();
    eprintln!("vm-test: downloading {package}");
    run(apt(cache, "apt-get")
        .current_dir(debs)
        .args(["download", &package])
        .stdout(std::io::stderr()))?;
    match cached_deb(debs, spec.name)? {
        Some(deb) => Ok(deb),
        None => bail!(
            "apt-get download {package} left no verified .deb in {}",
            debs.display()
        ),
    }
}

/// Orders names like `5.10.0-30` < `5.10.0-32`: digit runs compare as numbers.
fn version_key(name: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..text].to_string()));
            rest = &rest[text..];
        }
    }
    key
}

/// The vmlinuz and modules of an extracted package (newer packages keep
/// modules under usr/lib).
fn locate(name: &'static str, root: &Path) -> anyhow::Result<Kernel> {
    for modules_root in ["lib/modules", "usr/lib/modules"] {
        let Ok(entries) = fs::read_dir(root.join(modules_root)) else {
            continue;
        };
        for entry in entries.flatten() {
            let release = entry.file_name().to_string_lossy().into_owned();
            let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
            if vmlinuz.is_file() {
                return Ok(Kernel {
                    name,
                    release,
                    vmlinuz,
                    modules: entry.path(),
                });
            }
        }
    }
    bail!(
        "no boot/vmlinuz-RELEASE with lib/modules/RELEASE in {}",
        root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_key("linux-image-5.10.0-9-x") < version_key("linux-image-5.10.0-32-x"));
        assert!(version_key("6.12.107+deb13") < version_key("6.12.117+deb13"));
    }
}
