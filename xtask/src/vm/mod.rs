//! `cargo xtask vm-test`: the integration tests that prove the tracer works,
//! run inside Debian's cloud kernels 5.10, 6.1 and 6.12 booted under qemu,
//! then a kernel × check table. Downloads are cached in
//! [`kernels::CACHE_DIR`]; build products and each guest's console log
//! (`<kernel>.log`) are in target/vm.

mod checks;
mod initramfs;
mod kernels;
mod modules;
mod payload;
mod qemu;
mod rootfs;
mod tools;

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::command::workspace_root;

/// Lines of a failed check's output shown, at most (the whole is in the
/// kernel's log).
const EXCERPT_LINES: usize = 25;
/// A line longer than this is cut: the tracer's error and the first line
/// of a panic come first.
const EXCERPT_LINE_CHARS: usize = 600;
/// Booting, mounting and powering off, on top of the checks' own deadlines.
const BOOT_SECONDS: u64 = 90;
/// A guest's deadline, whatever its checks' add up to: the whole matrix
/// stays under about 25 minutes even when every check hangs (the checks
/// left are then reported NOT RUN).
const GUEST_SECONDS: u64 = 420;

pub struct Options {
    /// Only these kernels (e.g. "6.1"); all when empty.
    pub kernels: Vec<String>,
    /// Only the tests whose name contains this (the smoke checks always run).
    pub only: Option<String>,
}

/// Whether a test of the matrix has `only` in its name.
pub fn has_test(only: &str) -> bool {
    checks::select(Some(only))
        .iter()
        .any(|check| matches!(check.kind, checks::Kind::Test { .. }))
}

pub fn vm_test(options: &Options) -> anyhow::Result<()> {
    let names: Vec<&str> = kernels::MATRIX.iter().map(|k| k.name).collect();
    if let Some(unknown) = options
        .kernels
        .iter()
        .find(|n| !names.contains(&n.as_str()))
    {
        bail!(
            "no kernel {unknown} in the matrix: choose among {}",
            names.join(", ")
        );
    }
    let specs: Vec<&kernels::KernelSpec> = kernels::MATRIX
        .iter()
        .filter(|k| options.kernels.is_empty() || options.kernels.iter().any(|n| n == k.name))
        .collect();
    let selected = checks::select(options.only.as_deref());
    let mut test_binaries: Vec<&str> = selected
        .iter()
        .filter_map(|c| match c.kind {
            checks::Kind::Test { binary, .. } => Some(binary),
            _ => None,
        })
        .collect();
    if let Some(only) = options.only.as_deref().filter(|only| !has_test(only)) {
        bail!("no test of the matrix has {only:?} in its name");
    }
    test_binaries.sort_unstable();
    test_binaries.dedup();
    tools::ensure()?;

    let started = Instant::now();
    let fetched = kernels::fetch(&specs)?;
    let fetch_time = started.elapsed();

    let started = Instant::now();
    let built = payload::build(&test_binaries)?;
    let compile_time = started.elapsed();

    let started = Instant::now();
    let dir = workspace_root().join("target/vm");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let image = dir.join("root.ext4");
    let script = checks::script(&selected, &built.tracer, &built.binaries, &built.env);
    rootfs::build(&image, &dir.join("root"), &built.payload, &script)?;
    let image_time = started.elapsed();
    eprintln!(
        "vm-test: kernels ready in {:.1} s, tests built in {:.1} s, root image in {:.1} s",
        fetch_time.as_secs_f64(),
        compile_time.as_secs_f64(),
        image_time.as_secs_f64()
    );

    let timeout =
        Duration::from_secs((BOOT_SECONDS + checks::deadline(&selected)).min(GUEST_SECONDS));
    let mut rows = Vec::new();
    for kernel in &fetched {
        let initrd = dir.join(format!("{}.cpio", kernel.name));
        initramfs::write(&initrd, &modules::root_disk_modules(kernel)?)?;
        let guest = Guest {
            kernel,
            initrd: &initrd,
            image: &image,
            timeout,
        };
        let log = dir.join(format!("{}.log", kernel.name));
        let mut label = format!("{} ({})", kernel.name, kernel.release);
        let mut outcomes = guest.run(&selected, &log)?;
        // A guest that died or hung gets one more boot; the table says so,
        // and the first console is kept. (With a host thread per vCPU,
        // emulated live patching of kernel text failed now and then; see
        // qemu.rs.)
        if outcomes.iter().any(checks::Outcome::guest_died) {
            let hung = dir.join(format!("{}-hung.log", kernel.name));
            fs::rename(&log, &hung).with_context(|| format!("cannot keep {}", hung.display()))?;
            eprintln!(
                "vm-test: {} hung before its last check (console kept in {}): booting it again",
                kernel.name,
                hung.display()
            );
            outcomes = guest.run(&selected, &log)?;
            label += " (2nd boot: the 1st hung)";
        }
        rows.push((label, outcomes));
    }
    report(&selected, &rows, &dir);
    let failed = rows
        .iter()
        .flat_map(|(_, o)| o)
        .filter(|o| !o.passed())
        .count();
    if failed > 0 {
        bail!("{failed} check(s) failed in the kernel matrix");
    }
    Ok(())
}

/// One kernel's guest: what it boots, and how long it may run.
struct Guest<'a> {
    kernel: &'a kernels::Kernel,
    initrd: &'a Path,
    image: &'a Path,
    timeout: Duration,
}

impl Guest<'_> {
    /// Boots the guest, which runs `checks`, with its console in `log`;
    /// returns each check's outcome.
    fn run(&self, checks: &[&checks::Check], log: &Path) -> anyhow::Result<Vec<checks::Outcome>> {
        let started = Instant::now();
        let name = self.kernel.name;
        eprintln!(
            "vm-test: booting {name} ({}), console in {}",
            self.kernel.release,
            log.display()
        );
        let killed = qemu::run(
            &qemu::Boot {
                vmlinuz: &self.kernel.vmlinuz,
                initramfs: self.initrd,
                image: self.image,
                log,
                timeout: self.timeout,
            },
            |line| progress(name, started.elapsed(), line),
        )?;
        let console = fs::read(log).with_context(|| format!("cannot read {}", log.display()))?;
        eprintln!(
            "vm-test: {name} done in {:.1} s{}",
            started.elapsed().as_secs_f64(),
            if killed {
                " (killed at its deadline)"
            } else {
                ""
            }
        );
        Ok(checks::outcomes(checks, &String::from_utf8_lossy(&console)))
    }
}

/// A finished check as the guest reports it (name and exit status), with
/// the time since qemu started.
fn progress(kernel: &str, elapsed: Duration, line: &str) {
    if let Some(end) = line.strip_prefix(checks::END) {
        eprintln!("vm-test: {kernel}: {end} at {:.1} s", elapsed.as_secs_f64());
    } else if line.starts_with(initramfs::NO_ROOT) {
        eprintln!("vm-test: {kernel}: {line}");
    }
}

/// The failed checks' output, then the table.
fn report(checks: &[&checks::Check], rows: &[(String, Vec<checks::Outcome>)], dir: &Path) {
    for (kernel, outcomes) in rows {
        for (check, outcome) in checks.iter().zip(outcomes) {
            if outcome.passed() {
                continue;
            }
            println!("\n--- {kernel}: {} {} ---", check.column, outcome.status);
            for line in excerpt(&outcome.output) {
                println!("{line}");
            }
        }
    }
    println!("\n{}", checks::table(checks, rows));
    println!("guest consoles: {}", dir.join("<kernel>.log").display());
}

/// The test harness's report of a failed test (what the test printed, its
/// panic with the tracer's stderr) without the summaries around it and
/// without the indented JSON a panic message may hold; all of a check's
/// output when it is not a test's. Long lines are cut.
fn excerpt(output: &[String]) -> Vec<String> {
    let start = output
        .iter()
        .position(|l| l.starts_with("---- ") && l.ends_with(" stdout ----"));
    let lines = match start {
        Some(start) => {
            let end = output[start..]
                .iter()
                .position(|l| l == "failures:")
                .map_or(output.len(), |n| start + n);
            &output[start..end]
        }
        None => output,
    };
    lines
        .iter()
        .filter(|l| !l.starts_with("  ") && !l.trim().is_empty())
        .take(EXCERPT_LINES)
        .map(|line| match line.char_indices().nth(EXCERPT_LINE_CHARS) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.clone(),
        })
        .collect()
}
