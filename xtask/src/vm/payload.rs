//! What the guest runs, built on the host: the tracer (the static binary
//! users install, so no library is copied in for it), the integration test
//! binaries of the selected checks, and everything those tests reach by
//! absolute path (baked in at compile time): the C targets tests/build.rs
//! compiles, the Python targets and the demo, pyenv's Python 3.11 with
//! uvloop, trimmed of what no test imports, and the machine's Node.js (the
//! `node` on PATH, Node 20, which the JavaScript tests run by that name).

use std::{
    collections::BTreeMap,
    env, fs,
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{
    command::{cargo, workspace_root},
    vm::rootfs::{Payload, Tree},
};

/// How much longer the tests wait for targets and the tracer in the guest
/// (120 s): the verifier alone took 12 s per program there (6.1, under
/// TCG). Below the checks' own deadlines, so a test's failure says what
/// it waited for.
const SLOW_FACTOR: u32 = 2;

/// The Python the asyncio tests run (`pyenv_python("3.11")` in tests/src/lib.rs).
const PYTHON: &str = "3.11";

/// The payload, the test binaries by name, and the environment the tests
/// need in the guest.
pub struct Built {
    pub payload: Payload,
    pub tracer: PathBuf,
    pub binaries: BTreeMap<String, PathBuf>,
    pub env: Vec<(String, String)>,
}

pub fn build(test_binaries: &[&str]) -> anyhow::Result<Built> {
    let tracer = crate::dist::binary::build()?;
    let (binaries, out_dirs) = build_tests(test_binaries)?;
    let root = workspace_root();
    let mut trees = vec![
        Tree {
            path: root.join("demo"),
            skip: |_| false,
        },
        Tree {
            path: root.join("tests/targets"),
            skip: |_| false,
        },
    ];
    trees.extend(out_dirs.into_iter().map(|path| Tree {
        path,
        skip: |_| false,
    }));
    let pyenv = pyenv_root();
    trees.push(Tree {
        path: pyenv_version(&pyenv)?,
        skip: skip_python_extras,
    });
    let mut files: Vec<PathBuf> = binaries.values().cloned().collect();
    files.push(node_on_path()?);
    let env = vec![
        ("HOME".to_string(), home()),
        ("PYENV_ROOT".to_string(), pyenv.display().to_string()),
        (
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".to_string(),
        ),
        // Under CI=true a test that cannot trace fails instead of skipping.
        ("CI".to_string(), "true".to_string()),
        // TCG runs code 5-20x slower: wider readiness deadlines (tests/src/lib.rs).
        ("TRACER_TEST_SLOW".to_string(), SLOW_FACTOR.to_string()),
    ];
    Ok(Built {
        payload: Payload {
            static_files: vec![tracer.clone()],
            files,
            trees,
        },
        tracer,
        binaries,
        env,
    })
}

/// `cargo test --no-run` of the tests crate: the named test binaries, and
/// the build script's output directories (the C targets).
fn build_tests(names: &[&str]) -> anyhow::Result<(BTreeMap<String, PathBuf>, Vec<PathBuf>)> {
    let out = cargo()
        .args([
            "test",
            "--release",
            "--no-run",
            "--package",
            "tracer-tests",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo test --no-run")?;
    if !out.status.success() {
        bail!(
            "cargo test --no-run --package tracer-tests failed ({})",
            out.status
        );
    }
    let mut binaries = BTreeMap::new();
    let mut out_dirs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let name = message["target"]["name"].as_str().unwrap_or_default();
        let is_test = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "test"));
        match message["reason"].as_str() {
            Some("compiler-artifact") if is_test && names.contains(&name) => {
                if let Some(path) = message["executable"].as_str() {
                    binaries.insert(name.to_string(), PathBuf::from(path));
                }
            }
            Some("build-script-executed")
                if message["package_id"]
                    .as_str()
                    .is_some_and(|id| id.contains("tracer-tests")) =>
            {
                if let Some(dir) = message["out_dir"].as_str() {
                    out_dirs.push(PathBuf::from(dir));
                }
            }
            _ => {}
        }
    }
    if let Some(missing) = names.iter().find(|n| !binaries.contains_key(**n)) {
        bail!("cargo built no test binary named {missing}");
    }
    Ok((binaries, out_dirs))
}

/// The `node` the tests find on PATH, at that path (copied as a file even
/// where it is a link, so the guest's PATH finds it at the same place).
fn node_on_path() -> anyhow::Result<PathBuf> {
    env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .map(|dir| dir.join("node"))
        .find(|path| path.is_file())
        .context("no node on PATH: the Node.js check runs the machine's Node 20")
}

fn home() -> String {
    env::var("HOME").unwrap_or_else(|_| "/root".to_string())
}

/// Where the tests look for pyenv's Pythons.
fn pyenv_root() -> PathBuf {
    env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&home()).join(".pyenv"))
}

/// The newest `versions/3.11.*`: the one the tests pick.
fn pyenv_version(root: &Path) -> anyhow::Result<PathBuf> {
    let versions = root.join("versions");
    let mut found: Vec<PathBuf> = fs::read_dir(&versions)
        .with_context(|| format!("no pyenv versions in {}", versions.display()))?
        .flatten()
        .filter(|v| {
            v.file_name()
                .to_string_lossy()
                .strip_prefix(PYTHON)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|v| v.path())
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("no pyenv Python {PYTHON} in {}", versions.display()))
}

/// Parts of a Python installation no test uses (the whole is 740 MB, most
/// of it site-packages): the test suite, GUI and packaging modules, static
/// libraries and headers, every installed package but uvloop.
fn skip_python_extras(relative: &Path) -> bool {
    const UNUSED: [&str; 5] = ["test", "idlelib", "tkinter", "turtledemo", "ensurepip"];
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    match parts.as_slice() {
        ["include" | "share", ..] => true,
        ["lib", file] => file.ends_with(".a"),
        ["lib", stdlib, rest @ ..] if stdlib.starts_with("python") => match rest {
            [dir, ..] if UNUSED.contains(dir) || dir.starts_with("config-") => true,
            ["site-packages", package, ..] => !package.starts_with("uvloop"),
            [.., "tests"] => true,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::skip_python_extras;

    #[test]
    fn python_keeps_the_stdlib_and_uvloop() {
        for kept in [
            "bin/python3.11",
            "lib/libpython3.11.so.1.0",
            "lib/python3.11/asyncio/events.py",
            "lib/python3.11/lib-dynload/_socket.cpython-311-x86_64-linux-gnu.so",
            "lib/python3.11/site-packages/uvloop/loop.so",
        ] {
            assert!(!skip_python_extras(Path::new(kept)), "{kept}");
        }
        for skipped in [
            "lib/python3.11/test/test_os.py",
            "lib/python3.11/config-3.11-x86_64-linux-gnu",
            "lib/python3.11/site-packages/sympy",
            "lib/libpython3.11.a",
        ] {
            assert!(skip_python_extras(Path::new(skipped)), "{skipped}");
        }
    }
}
