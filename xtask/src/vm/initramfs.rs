//! The guest's first stage, one per kernel: an uncompressed initramfs (cpio
//! "newc", written here: no root or cpio tool needed for the device node)
//! holding static busybox, the modules that reach the root disk and an init
//! script that mounts the root image and runs the checks inside it.

use std::{fs, path::Path};

use anyhow::Context;

use crate::vm::modules::Module;

/// The static busybox of Debian's busybox-static.
pub const BUSYBOX: &str = "/bin/busybox";

/// The script the root image holds, run by init after chroot (see rootfs.rs).
pub const GUEST_SCRIPT: &str = "/vm/run.sh";

/// Printed by init when the root disk cannot be mounted: ends the run early.
pub const NO_ROOT: &str = "@@tracer-vm no-root";

fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Kernel messages would interleave with the results on the serial console.
echo 1 > /proc/sys/kernel/printk
for module in /modules/*.ko; do
    insmod "$module" || echo "insmod $module failed"
done
# The disk appears asynchronously after virtio_blk probes it.
tries=0
while [ ! -b /dev/vda ] && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
if mount -t ext4 /dev/vda /newroot; then
    chroot /newroot /bin/sh {GUEST_SCRIPT}
else
    echo "{NO_ROOT}: cannot mount /dev/vda"; ls /dev
fi
poweroff -f
"#
    )
}

/// Writes the initramfs of a kernel with `modules` (in load order) to `path`.
pub fn write(path: &Path, modules: &[Module]) -> anyhow::Result<()> {
    let busybox = fs::read(BUSYBOX).with_context(|| format!("cannot read {BUSYBOX}"))?;
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "newroot", "modules"] {
        cpio.entry(dir, 0o040755, &[], (0, 0));
    }
    // The kernel opens /dev/console for init before anything is mounted.
    cpio.entry("dev/console", 0o020600, &[], (5, 1));
    cpio.entry("bin/busybox", 0o100755, &busybox, (0, 0));
    cpio.entry("init", 0o100755, init_script().as_bytes(), (0, 0));
    for (index, module) in modules.iter().enumerate() {
        let name = format!("modules/{index:02}-{}.ko", module.name);
        cpio.entry(&name, 0o100644, &module.bytes, (0, 0));
    }
    cpio.entry("TRAILER!!!", 0, &[], (0, 0));
    fs::write(path, cpio.bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    inode: u32,
}

impl Cpio {
    /// One "newc" entry: a 110-byte ASCII header, the name, the data, each
    /// padded to 4 bytes. `rdev` is a device node's (major, minor).
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.inode += 1;
        let name_size = name.len() + 1;
        let fields = [
            self.inode,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            data.len() as u32,
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            name_size as u32,
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cpio;

    #[test]
    fn entries_are_aligned_newc() {
        let mut cpio = Cpio::default();
        cpio.entry("init", 0o100755, b"#!", (0, 0));
        assert!(cpio.bytes.starts_with(b"070701"));
        assert_eq!(cpio.bytes.len() % 4, 0);
        // Header, "init\0" padded to 4 from 110+5, then the data padded.
        assert_eq!(cpio.bytes.len(), 116 + 4);
    }
}
