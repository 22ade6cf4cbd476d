//! The Python wheel: the static binary as the wheel's script, so that
//! `pip install` puts `tracer` on PATH (as py-spy and ruff ship theirs).
//! Assembled here by the wheel spec (PEP 427) rather than with maturin: the
//! wheel then carries the very binary dist built and checked, with no Python
//! build tool to install and no second build. A static binary needs no
//! particular libc, so one wheel carries both the manylinux and the
//! musllinux tags of the oldest glibc and musl pip knows.

use std::{fs, io::Write, path::Path, path::PathBuf};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use zip::{CompressionMethod, DateTime, ZipWriter, write::SimpleFileOptions};

use super::{NAME, metadata::Package};
use crate::command::workspace_root;

const PLATFORMS: [&str; 3] = [
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "musllinux_1_1_x86_64",
];

/// Writes the wheel into `out`; returns its path.
pub fn build(binary: &Path, package: &Package, out: &Path) -> anyhow::Result<PathBuf> {
    let distribution = NAME.replace('-', "_");
    let version = &package.version;
    let tag = format!("py3-none-{}", PLATFORMS.join("."));
    let data = format!("{distribution}-{version}.data");
    let info = format!("{distribution}-{version}.dist-info");
    let files = [
        (
            format!("{data}/scripts/tracer"),
            fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?,
        ),
        (format!("{info}/METADATA"), metadata(package)?.into_bytes()),
        (format!("{info}/WHEEL"), wheel_file().into_bytes()),
    ];
    let path = out.join(format!("{distribution}-{version}-{tag}.whl"));
    write_zip(&path, &files, &format!("{info}/RECORD"))?;
    Ok(path)
}

/// Core metadata 2.1: what it is, with the README as its description.
fn metadata(package: &Package) -> anyhow::Result<String> {
    let readme_path = workspace_root().join("README.md");
    let readme = fs::read_to_string(&readme_path)
        .with_context(|| format!("cannot read {}", readme_path.display()))?;
    let mut text = format!(
        "Metadata-Version: 2.1\nName: {NAME}\nVersion: {}\nSummary: {}\nLicense: {}\n\
         Keywords: ebpf,asyncio,event-loop,profiler,latency,tracing\n\
         Classifier: Development Status :: 3 - Alpha\n\
         Classifier: Environment :: Console\n\
         Classifier: Operating System :: POSIX :: Linux\n\
         Classifier: Topic :: Software Development :: Debuggers\n\
         Classifier: Framework :: AsyncIO\n",
        package.version, package.summary, package.license
    );
    if let Some(homepage) = &package.homepage {
        text.push_str(&format!("Project-URL: Documentation, {homepage}\n"));
    }
    text.push_str("Description-Content-Type: text/markdown\n\n");
    text.push_str(&readme);
    Ok(text)
}

fn wheel_file() -> String {
    let mut text =
        "Wheel-Version: 1.0\nGenerator: cargo xtask dist\nRoot-Is-Purelib: false\n".to_string();
    for platform in PLATFORMS {
        text.push_str(&format!("Tag: py3-none-{platform}\n"));
    }
    text
}

/// The zip, entries in a fixed order with fixed times (same input, same
/// bytes), and its RECORD of each entry's sha256 and size.
fn write_zip(path: &Path, files: &[(String, Vec<u8>)], record: &str) -> anyhow::Result<()> {
    let file =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut zip = ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default());
    let mut listing = String::new();
    for (name, bytes) in files {
        let mode = if name.contains("/scripts/") {
            0o755
        } else {
            0o644
        };
        zip.start_file(name.as_str(), options.unix_permissions(mode))?;
        zip.write_all(bytes)?;
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(bytes));
        listing.push_str(&format!("{name},sha256={digest},{}\n", bytes.len()));
    }
    listing.push_str(&format!("{record},,\n"));
    zip.start_file(record, options.unix_permissions(0o644))?;
    zip.write_all(listing.as_bytes())?;
    zip.finish()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
