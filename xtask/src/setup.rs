//! Makes a fresh machine able to build the eBPF programs. Idempotent: each
//! step checks first and does nothing when its result is already there.
//!
//! The eBPF crate is built with the nightly toolchain (it needs `-Z
//! build-std=core`, hence rust-src) and linked by bpf-linker. No prebuilt
//! bpf-linker can be downloaded here and there is no system LLVM, so it is
//! built from crates.io against nightly's own libLLVM, through a fake LLVM
//! prefix holding two links to that library: `libLLVM.so` for the build and
//! the versioned name the installed linker asks for at run time.

use std::{
    env, fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::command::{output, run};

/// The bpf-linker release known to work with aya 0.14 and LLVM 22.
const BPF_LINKER_VERSION: &str = "0.13.0";
const TOOLCHAIN: &str = "nightly";

pub fn setup() -> anyhow::Result<()> {
    let sysroot = ensure_nightly()?;
    ensure_bpf_linker(&sysroot)?;
    ensure_tracefs();
    Ok(())
}

fn rustc_sysroot() -> Option<PathBuf> {
    output(Command::new("rustc").args([&format!("+{TOOLCHAIN}"), "--print", "sysroot"]))
        .map(|s| PathBuf::from(s.trim()))
}

/// Nightly with rust-src; returns its sysroot.
fn ensure_nightly() -> anyhow::Result<PathBuf> {
    let sysroot = match rustc_sysroot() {
        Some(sysroot) => sysroot,
        None => {
            eprintln!("setup: installing the {TOOLCHAIN} toolchain");
            // Never let rustup update itself: that would also move nightly
            // and delete the libLLVM that bpf-linker was built against.
            run(Command::new("rustup").args([
                "toolchain",
                "install",
                TOOLCHAIN,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
                "--no-self-update",
            ]))?;
            rustc_sysroot().context("nightly installed but rustc +nightly does not run")?
        }
    };
    if !sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        eprintln!("setup: adding rust-src to {TOOLCHAIN}");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            TOOLCHAIN,
        ]))?;
    }
    Ok(sysroot)
}

fn bpf_linker_works() -> bool {
    output(Command::new("bpf-linker").arg("--version"))
        .is_some_and(|v| v.contains(BPF_LINKER_VERSION))
}

/// The versioned libLLVM of the toolchain, e.g. `libLLVM.so.22.1-rust-1.97.0-nightly`,
/// and its LLVM major version.
fn toolchain_llvm(sysroot: &Path) -> anyhow::Result<(PathBuf, u32)> {
    let lib = sysroot.join("lib");
    let entries = fs::read_dir(&lib).with_context(|| format!("cannot list {}", lib.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(version) = name.strip_prefix("libLLVM.so.") {
            let major = version
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .with_context(|| format!("cannot read the LLVM version of {name}"))?;
            return Ok((entry.path(), major));
        }
    }
    bail!("no libLLVM.so.* in {}", lib.display())
}

pub fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

fn ensure_bpf_linker(sysroot: &Path) -> anyhow::Result<()> {
    if bpf_linker_works() {
        return Ok(());
    }
    let (libllvm, major) = toolchain_llvm(sysroot)?;
    // The installed linker keeps this path as its RUNPATH: it must stay.
    let prefix = cargo_home().join("bpf-linker-llvm");
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("cannot create {}", lib.display()))?;
    let versioned = libllvm
        .file_name()
        .context("libLLVM path has no file name")?;
    for name in [Path::new("libLLVM.so"), Path::new(versioned)] {
        let link = lib.join(name);
        let _ = fs::remove_file(&link);
        symlink(&libllvm, &link).with_context(|| format!("cannot create {}", link.display()))?;
    }
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against {} (about a minute)",
        libllvm.display()
    );
    run(Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--version",
            BPF_LINKER_VERSION,
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
            "--force",
        ])
        .env("LLVM_PREFIX", &prefix))?;
    if !bpf_linker_works() {
        bail!(
            "bpf-linker was installed but does not run: is {} on PATH?",
            cargo_home().join("bin").display()
        );
    }
    Ok(())
}

/// Tracepoint attachment reads tracefs; some machines boot without it.
fn ensure_tracefs() {
    let tracefs = Path::new("/sys/kernel/tracing");
    if tracefs.join("events").is_dir() {
        return;
    }
    let mounted = Command::new("mount")
        .args(["-t", "tracefs", "nodev"])
        .arg(tracefs)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("setup: warning: tracefs is not mounted and mounting it failed (not root?)");
    }
}
