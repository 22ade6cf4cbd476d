//! Python packages that the demo, the test targets and the benchmarks import,
//! pip-installed into the machine's `python3` (or another interpreter) only
//! when missing.

use std::{ffi::OsStr, process::Command};

use anyhow::bail;

use crate::command::{output, run};

/// Makes `python3` able to import each of `modules` (pip package of the same name).
pub fn ensure_packages(modules: &[&str]) -> anyhow::Result<()> {
    ensure_packages_in("python3".as_ref(), modules)
}

/// Makes the interpreter `python` able to import each of `modules`.
pub fn ensure_packages_in(python: &OsStr, modules: &[&str]) -> anyhow::Result<()> {
    let imports = |module: &str| {
        output(Command::new(python).args(["-c", &format!("import {module}")])).is_some()
    };
    let missing: Vec<&str> = modules
        .iter()
        .copied()
        .filter(|module| !imports(module))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing {} ({} -m pip install)",
        missing.join(" "),
        python.to_string_lossy()
    );
    run(Command::new(python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(&missing)
        .env("PIP_ROOT_USER_ACTION", "ignore"))?;
    if let Some(module) = missing.iter().find(|module| !imports(module)) {
        bail!(
            "pip installed {module} but {} cannot import it",
            python.to_string_lossy()
        );
    }
    Ok(())
}

/// The pyenv interpreters of CPython 3.8 to 3.13, which the tests trace.
pub fn pyenv_pythons() -> Vec<std::path::PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/root/.pyenv".into());
    let Ok(versions) = std::fs::read_dir(root.join("versions")) else {
        return Vec::new();
    };
    versions
        .flatten()
        .filter_map(|version| {
            let name = version.file_name().to_string_lossy().into_owned();
            let minor: u32 = name.strip_prefix("3.")?.split('.').next()?.parse().ok()?;
            let python = version.path().join(format!("bin/python3.{minor}"));
            ((8..=13).contains(&minor) && python.exists()).then_some(python)
        })
        .collect()
}
