//! The host tools the kernel matrix needs, installed with the machine's own
//! apt when missing (Debian package names).

use std::{path::Path, process::Command};

use crate::{apt, command::output, vm::initramfs::BUSYBOX};

/// A tool, and the package that provides it.
const TOOLS: [(&str, &str); 6] = [
    ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/sbin/mkfs.ext4", "e2fsprogs"),
    ("/usr/bin/dpkg-deb", "dpkg"),
    ("/usr/bin/apt-get", "apt"),
    ("/usr/bin/xz", "xz-utils"),
    ("/usr/bin/zstd", "zstd"),
];

pub fn ensure() -> anyhow::Result<()> {
    // The guest has no libc of its own: busybox must be the static build
    // (Debian's `busybox` package is dynamic; busybox-static replaces it).
    let static_busybox =
        Path::new(BUSYBOX).exists() && output(Command::new("ldd").arg(BUSYBOX)).is_none();
    let busybox: &[&str] = if static_busybox {
        &[]
    } else {
        &["busybox-static"]
    };
    apt::ensure(&TOOLS, busybox)
}
