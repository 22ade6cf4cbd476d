//! What the packages say about tracer, read from its Cargo.toml (through
//! `cargo metadata`) so that it is written once.

use anyhow::Context;
use serde_json::Value;

use crate::command::{cargo, output};

pub struct Package {
    pub version: String,
    pub summary: String,
    pub license: String,
    /// The `homepage`, else the `repository` of Cargo.toml, if set.
    pub homepage: Option<String>,
}

pub fn tracer_package() -> anyhow::Result<Package> {
    let text = output(cargo().args(["metadata", "--no-deps", "--format-version", "1"]))
        .context("cargo metadata failed")?;
    let metadata: Value = serde_json::from_str(&text).context("cargo metadata: not JSON")?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "tracer"))
        .context("cargo metadata lists no package tracer")?;
    let field = |name: &str| package[name].as_str().map(str::to_string);
    Ok(Package {
        version: field("version").context("tracer has no version")?,
        summary: field("description").context("tracer's Cargo.toml has no description")?,
        license: field("license").context("tracer's Cargo.toml has no license")?,
        homepage: field("homepage").or_else(|| field("repository")),
    })
}
