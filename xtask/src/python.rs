//! Python packages that the demo, the test targets and the benchmarks import,
//! pip-installed into the machine's `python3` only when missing.

use std::process::Command;

use anyhow::bail;

use crate::command::{output, run};

/// Makes `python3` able to import each of `modules` (pip package of the same name).
pub fn ensure_packages(modules: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = modules
        .iter()
        .copied()
        .filter(|module| !imports(module))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing {} (python3 -m pip install)",
        missing.join(" ")
    );
    run(Command::new("python3")
        .args(["-m", "pip", "install", "--quiet"])
        .args(&missing)
        .env("PIP_ROOT_USER_ACTION", "ignore"))?;
    if let Some(module) = missing.iter().find(|module| !imports(module)) {
        bail!("pip installed {module} but python3 cannot import it");
    }
    Ok(())
}

fn imports(module: &str) -> bool {
    output(Command::new("python3").args(["-c", &format!("import {module}")])).is_some()
}
