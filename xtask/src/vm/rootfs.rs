//! The guest's root disk: an ext4 image made by `mkfs.ext4 -d` from a
//! staging directory (no mount needed) that mirrors the host's absolute
//! paths of what the checks run (the tests have their paths baked in at
//! compile time), plus every shared library those programs load, static
//! busybox for the shell and tools, and the script that runs the checks.
//! One image serves every kernel: qemu opens it with `snapshot=on`.

use std::{
    collections::BTreeSet,
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{
    command::{output, run},
    vm::initramfs::{BUSYBOX, GUEST_SCRIPT},
};

/// A directory copied at its host path, but for the entries under it
/// whose relative path `skip` accepts.
pub struct Tree {
    pub path: PathBuf,
    pub skip: fn(&Path) -> bool,
}

/// What the guest needs, at host paths.
pub struct Payload {
    /// Copied alone: each must be static (checked), needing no library.
    pub static_files: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
    pub trees: Vec<Tree>,
}

/// Builds `image` from `payload` and the guest `script`, staged in `staging`.
pub fn build(image: &Path, staging: &Path, payload: &Payload, script: &str) -> anyhow::Result<()> {
    if staging.exists() {
        fs::remove_dir_all(staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    fs::create_dir_all(staging).with_context(|| format!("cannot create {}", staging.display()))?;
    merge_usr_like_host(staging)?;
    for file in &payload.static_files {
        crate::dist::binary::ensure_static(file)?;
        copy_file(file, staging)?;
    }
    let mut elves = BTreeSet::new();
    for file in &payload.files {
        copy_file(file, staging)?;
        elves.insert(file.clone());
    }
    for tree in &payload.trees {
        copy_tree(&tree.path, Path::new(""), tree.skip, staging, &mut elves)?;
    }
    for library in libraries(&elves)? {
        copy_file(&library, staging)?;
    }
    add_busybox(staging)?;
    add_etc(staging)?;
    for dir in ["proc", "sys", "dev", "tmp", "root", "run"] {
        create_dir(&staging.join(dir))?;
    }
    let script_path = staged(staging, Path::new(GUEST_SCRIPT));
    create_dir(script_path.parent().unwrap_or(staging))?;
    fs::write(&script_path, script)
        .with_context(|| format!("cannot write {}", script_path.display()))?;
    make_ext4(image, staging)
}

fn staged(staging: &Path, host: &Path) -> PathBuf {
    staging.join(host.strip_prefix("/").unwrap_or(host))
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// /bin, /lib… as links into /usr where the host has them so: a library
/// ldd names as /lib/x86_64-linux-gnu/… then lands where the loader looks.
fn merge_usr_like_host(staging: &Path) -> anyhow::Result<()> {
    for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let Ok(target) = fs::read_link(Path::new("/").join(top)) else {
            continue;
        };
        if target.is_absolute() {
            bail!(
                "/{top} links to the absolute {}: not mirrored",
                target.display()
            );
        }
        create_dir(&staging.join(&target))?;
        symlink(&target, staging.join(top))
            .with_context(|| format!("cannot link {top} in {}", staging.display()))?;
    }
    Ok(())
}

/// Copies `host` (following links) to its own path under `staging`.
fn copy_file(host: &Path, staging: &Path) -> anyhow::Result<()> {
    let to = staged(staging, host);
    let parent = to.parent().unwrap_or(staging);
    create_dir(parent)?;
    // A mirrored link with an absolute target, on the way or in place,
    // would make the copy overwrite a file of the host.
    let real_parent = parent.canonicalize()?;
    if !real_parent.starts_with(staging.canonicalize()?) {
        bail!(
            "{} leads out of the staging directory, to {}",
            to.display(),
            real_parent.display()
        );
    }
    if to
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        fs::remove_file(&to)
            .with_context(|| format!("cannot replace the link {}", to.display()))?;
    }
    fs::copy(host, &to)
        .with_context(|| format!("cannot copy {} to {}", host.display(), to.display()))?;
    Ok(())
}

/// Copies `root/relative` recursively, links as links; notes ELF files.
fn copy_tree(
    root: &Path,
    relative: &Path,
    skip: fn(&Path) -> bool,
    staging: &Path,
    elves: &mut BTreeSet<PathBuf>,
) -> anyhow::Result<()> {
    let dir = root.join(relative);
    create_dir(&staged(staging, &dir))?;
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let relative = relative.join(entry.file_name());
        if skip(&relative) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            let target = fs::read_link(&path)?;
            symlink(&target, staged(staging, &path))
                .with_context(|| format!("cannot mirror the link {}", path.display()))?;
        } else if kind.is_dir() {
            copy_tree(root, &relative, skip, staging, elves)?;
        } else if kind.is_file() {
            copy_file(&path, staging)?;
            if is_elf(&path) {
                elves.insert(path);
            }
        }
    }
    Ok(())
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// Every shared library (and the dynamic loader) the ELF files load, by ldd.
fn libraries(elves: &BTreeSet<PathBuf>) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut libraries = BTreeSet::new();
    for elf in elves {
        // ldd fails on static binaries and on objects it cannot load: they need nothing.
        let Some(listing) = output(Command::new("ldd").arg(elf)) else {
            continue;
        };
        for line in listing.lines() {
            if line.contains("not found") {
                bail!("{}: ldd cannot find {}", elf.display(), line.trim());
            }
            // "libc.so.6 => /lib/…/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)".
            let path = line.split("=>").last().unwrap_or(line).trim();
            let path = path.split(" (").next().unwrap_or(path);
            if path.starts_with('/') {
                libraries.insert(PathBuf::from(path));
            }
        }
    }
    Ok(libraries)
}

/// Busybox and a link for each of its applets the image does not have.
fn add_busybox(staging: &Path) -> anyhow::Result<()> {
    copy_file(Path::new(BUSYBOX), staging)?;
    let applets = output(Command::new(BUSYBOX).arg("--list-full"))
        .with_context(|| format!("{BUSYBOX} --list-full failed"))?;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        let link = staging.join(applet);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        create_dir(link.parent().unwrap_or(staging))?;
        symlink(BUSYBOX, &link).with_context(|| format!("cannot link {}", link.display()))?;
    }
    Ok(())
}

/// What libc and Python look up: users, and localhost for the sockets.
fn add_etc(staging: &Path) -> anyhow::Result<()> {
    let etc = staging.join("etc");
    create_dir(&etc)?;
    for (name, text) in [
        ("passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("group", "root:x:0:\n"),
        ("hosts", "127.0.0.1 localhost\n::1 localhost\n"),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nhosts: files\n",
        ),
    ] {
        fs::write(etc.join(name), text).with_context(|| format!("cannot write /etc/{name}"))?;
    }
    Ok(())
}

fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => tree_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// An ext4 image of `staging`, sized to its content with room for metadata.
fn make_ext4(image: &Path, staging: &Path) -> anyhow::Result<()> {
    let mib = tree_bytes(staging) / (1 << 20) * 5 / 4 + 64;
    let _ = fs::remove_file(image);
    fs::File::create(image)
        .and_then(|file| file.set_len(mib << 20))
        .with_context(|| format!("cannot create {}", image.display()))?;
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "tracer-vm", "-E", "root_owner=0:0", "-d"])
        .arg(staging)
        .arg(image))
}
