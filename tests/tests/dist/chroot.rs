//! A Debian root made by debootstrap, entered with chroot as a container
//! would be: the kernel's /proc, /dev, /sys, tracefs and bpffs are bind-
//! mounted into it, and unmounted on drop (on every path out of a test);
//! mounts a killed run left behind are unmounted first.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::Command,
};

/// What a tracer and a Python need of the kernel, in mount order.
const MOUNTS: [&str; 5] = [
    "/proc",
    "/dev",
    "/sys",
    "/sys/kernel/tracing",
    "/sys/fs/bpf",
];

pub struct Chroot {
    pub root: PathBuf,
    mounted: Vec<PathBuf>,
}

impl Chroot {
    pub fn enter(root: &Path) -> Self {
        assert!(
            root.join("usr/bin").is_dir(),
            "{} is no root",
            root.display()
        );
        unmount_stale(root);
        let mut chroot = Self {
            root: root.to_path_buf(),
            mounted: Vec::new(),
        };
        for host in MOUNTS {
            let at = root.join(&host[1..]);
            std::fs::create_dir_all(&at).expect("mount point");
            bind(Path::new(host), &at);
            chroot.mounted.push(at);
        }
        chroot
    }

    /// `chroot ROOT ARGS` with a plain environment (PATH, HOME, LANG=C).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("chroot");
        command
            .arg(&self.root)
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .env("LANG", "C");
        command
    }

    /// Runs `args` in the root; its stdout, or a panic with its stderr.
    pub fn run(&self, args: &[&str]) -> String {
        run(&mut self.command(args))
    }
}

/// Runs `command`; its stdout, or a panic with its stderr.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Drop for Chroot {
    fn drop(&mut self) {
        for at in self.mounted.iter().rev() {
            unmount(at);
        }
    }
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("path without NUL")
}

fn bind(from: &Path, to: &Path) {
    let (from_c, to_c) = (c_path(from), c_path(to));
    // SAFETY: valid NUL-terminated paths; no file system type or data for a bind.
    let status = unsafe {
        libc::mount(
            from_c.as_ptr(),
            to_c.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(
        status,
        0,
        "cannot bind {} to {}: {}",
        from.display(),
        to.display(),
        std::io::Error::last_os_error()
    );
}

/// Unmounts `at`; lazily if it is busy (a process of a failed test may
/// still have a file open in it), so that the root is left clean.
fn unmount(at: &Path) {
    let at_c = c_path(at);
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(at_c.as_ptr(), 0) } != 0 {
        // SAFETY: as above.
        unsafe { libc::umount2(at_c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Unmounts what is mounted under `root`, deepest first.
fn unmount_stale(root: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let prefix = format!("{}/", root.display());
    let mut stale: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .filter(|point| point.starts_with(&prefix))
        .collect();
    stale.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in stale {
        unmount(Path::new(point));
    }
}
