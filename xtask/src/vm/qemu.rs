//! Boots a kernel under qemu (TCG: /dev/kvm hangs qemu on these machines),
//! with the serial console in a log file, and waits for the guest to power
//! off, or kills it at a deadline.

use std::{
    fs,
    io::{Read, Seek, SeekFrom},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context;

pub struct Boot<'a> {
    pub vmlinuz: &'a Path,
    pub initramfs: &'a Path,
    pub image: &'a Path,
    /// The serial console, written by qemu as the guest runs.
    pub log: &'a Path,
    pub timeout: Duration,
}

/// Runs the guest to its end; calls `on_line` with each console line as it
/// comes. Returns whether it had to be killed at the deadline.
pub fn run(boot: &Boot, mut on_line: impl FnMut(&str)) -> anyhow::Result<bool> {
    let _ = fs::remove_file(boot.log);
    let mut child = Command::new("qemu-system-x86_64")
        // One host thread for both vCPUs: with one each (thread=multi), a
        // vCPU now and then ran kernel text another was live-patching
        // (attaching or detaching a tracepoint flips its static keys and
        // calls through int3): an "Oops: int3" in __schedule on 6.12, and a
        // CPU stuck at a syscall's exit on 5.10.
        .args([
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-m",
            "3G",
            "-smp",
            "2",
        ])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-serial")
        .arg(format!("file:{}", boot.log.display()))
        .arg("-kernel")
        .arg(boot.vmlinuz)
        .arg("-initrd")
        .arg(boot.initramfs)
        // A soft lockup or a task blocked for 90 s ends the guest at once
        // (panic, then no reboot) with its backtrace on the console, rather
        // than at the deadline.
        .args([
            "-append",
            "console=ttyS0 panic=-1 quiet softlockup_panic=1 hung_task_panic=1 \
             hung_task_timeout_secs=90",
        ])
        // snapshot=on: the guest's writes go to a scratch overlay, so one
        // image serves every kernel unchanged.
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=virtio,snapshot=on",
            boot.image.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start qemu-system-x86_64")?;
    let deadline = Instant::now() + boot.timeout;
    let mut tail = LogTail::default();
    loop {
        let exited = child.try_wait().context("cannot wait for qemu")?.is_some();
        tail.read(boot.log, &mut on_line);
        if exited {
            return Ok(false);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            tail.read(boot.log, &mut on_line);
            return Ok(true);
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Reads the lines appended to a growing file since the last call.
#[derive(Default)]
struct LogTail {
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    fn read(&mut self, path: &Path, on_line: &mut impl FnMut(&str)) {
        let Ok(mut file) = fs::File::open(path) else {
            return;
        };
        let mut new = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut new).is_err() {
            return;
        }
        self.offset += new.len() as u64;
        self.partial.extend_from_slice(&new);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            on_line(String::from_utf8_lossy(&line).trim_end());
        }
    }
}
