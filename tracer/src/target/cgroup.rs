//! `--cgroup PATH`: every process of a cgroup v2 and of its descendants (a
//! Kubernetes pod's containers, a systemd slice's services).
//!
//! The kernel tells a cgroup by its id, the inode number of its directory
//! (`bpf_get_current_cgroup_id`). The ids go to the kernel first, so that a
//! process starting a program there from then on joins at once; then the
//! processes already inside are read. A process that enters without
//! starting a program, or a cgroup made later, is found by the next
//! [`Cgroup::scan`], which the recording repeats.

use std::{
    ffi::{CString, OsStr},
    fs, io,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
};

use crate::trace::TargetInfo;

/// `statfs` magic of a cgroup v2 filesystem.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup v2 filesystem is mounted (see /proc/self/mountinfo)")]
    NoCgroup2,
    #[error("--cgroup {given}: no such cgroup v2 directory (cgroup v2 is mounted at {mount})")]
    NotFound { given: String, mount: String },
    #[error("--cgroup {0}: not a cgroup v2 directory (give a directory of a cgroup2 mount)")]
    NotCgroup2(String),
    #[error("--cgroup {0}: has no processes (nor have its descendants): nothing to trace")]
    Empty(String),
    #[error("cannot read cgroup {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// A cgroup v2 directory to trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    pub dir: PathBuf,
    /// Its path as `/proc/PID/cgroup` shows it: from the root of the mount.
    pub name: String,
}

/// What a scan of the cgroup and its descendants found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Cgroup ids (inode numbers), the given cgroup's first.
    pub ids: Vec<u64>,
    /// Process ids, ascending, each once.
    pub pids: Vec<u32>,
}

impl Cgroup {
    /// The cgroup `given` names: a directory of a cgroup v2 mount, or a
    /// path from the root of the cgroup v2 mount (`/system.slice/x.service`,
    /// as `/proc/PID/cgroup` prints it).
    pub fn resolve(given: &Path) -> Result<Self, CgroupError> {
        let shown = given.display().to_string();
        let mounts = cgroup2_mounts();
        let mount = mounts
            .iter()
            .filter(|m| given.starts_with(m))
            .max_by_key(|m| m.as_os_str().len());
        let (mount, dir) = match mount {
            Some(mount) => (mount.clone(), given.to_path_buf()),
            None => {
                let mount = mounts.first().ok_or(CgroupError::NoCgroup2)?;
                let relative = given.strip_prefix("/").unwrap_or(given);
                (mount.clone(), mount.join(relative))
            }
        };
        if !dir.is_dir() {
            return Err(CgroupError::NotFound {
                given: shown,
                mount: mount.display().to_string(),
            });
        }
        if !is_cgroup2(&dir) {
            return Err(CgroupError::NotCgroup2(shown));
        }
        let below = dir.strip_prefix(&mount).unwrap_or(Path::new(""));
        Ok(Self {
            name: format!("/{}", below.display()),
            dir,
        })
    }

    /// The ids of the cgroup and its descendants and the processes in them
    /// now. A child cgroup removed while it is read is left out.
    pub fn scan(&self) -> Result<Members, CgroupError> {
        let mut members = Members::default();
        let mut pending = vec![self.dir.clone()];
        let mut first = true;
        while let Some(dir) = pending.pop() {
            match scan_one(&dir, &mut members, &mut pending) {
                Ok(()) => {}
                Err(e) if !first && e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(CgroupError::Read {
                        path: dir.display().to_string(),
                        source,
                    });
                }
            }
            first = false;
        }
        members.pids.sort_unstable();
        members.pids.dedup();
        Ok(members)
    }
}

/// The processes in `cgroup` and its descendants now, lowest pid first
/// (the report is named after it: a container's or service's first
/// process). Processes that exit meanwhile, and the tracer, are left out.
pub fn inspect_members(cgroup: &Cgroup) -> Result<Vec<TargetInfo>, CgroupError> {
    let members = cgroup.scan()?;
    let targets: Vec<TargetInfo> = members
        .pids
        .iter()
        .filter_map(|&pid| super::inspect(pid).ok())
        .collect();
    if targets.is_empty() {
        return Err(CgroupError::Empty(cgroup.dir.display().to_string()));
    }
    Ok(targets)
}

/// Adds `dir`'s id and processes to `members`, and its child cgroups to
/// `pending`.
fn scan_one(dir: &Path, members: &mut Members, pending: &mut Vec<PathBuf>) -> io::Result<()> {
    members.ids.push(fs::metadata(dir)?.ino());
    let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
    members.pids.extend(
        procs
            .lines()
            .filter_map(|line| line.trim().parse::<u32>().ok()),
    );
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            pending.push(entry.path());
        }
    }
    Ok(())
}

/// The mount points of cgroup v2 filesystems, from /proc/self/mountinfo
/// (field 5 is the mount point; the filesystem type follows " - ").
fn cgroup2_mounts() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (fields, after) = line.split_once(" - ")?;
            (after.split_whitespace().next()? == "cgroup2")
                .then(|| fields.split_whitespace().nth(4).map(unescape))?
        })
        .collect()
}

/// mountinfo escapes spaces, tabs, newlines and backslashes as octal.
fn unescape(field: &str) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

fn is_cgroup2(dir: &Path) -> bool {
    let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs reads the NUL-terminated path and writes one struct
    // statfs, which is zeroed plain data.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statfs(path.as_ptr(), &mut stat) } == 0;
    // f_type is signed in glibc, unsigned in musl (the static binary).
    ok && stat.f_type as u64 == CGROUP2_SUPER_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(
            unescape(r"/sys/fs/cgroup/with\040space"),
            PathBuf::from("/sys/fs/cgroup/with space")
        );
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }

    #[test]
    fn a_path_that_is_no_cgroup_is_refused() {
        let error = Cgroup::resolve(Path::new("/tmp")).unwrap_err();
        assert!(
            matches!(
                error,
                CgroupError::NotFound { .. } | CgroupError::NotCgroup2(_) | CgroupError::NoCgroup2
            ),
            "{error}"
        );
    }
}
