//! Where a Python target runs: an interpreter of this machine, or CPython
//! 3.14 in the Debian sid root `cargo xtask test` makes ($TRACER_SID_ROOT),
//! entered as a container is (`unshare --mount --root --mount-proc`): its
//! files are then only behind /proc/PID/root. Its glibc is newer than the
//! machine's, so its python3.14 runs only there.

use std::{ffi::OsString, path::PathBuf, process::Command};

use crate::pyenv_python;

/// Where target scripts are copied inside the sid root.
const DIR_IN_ROOT: &str = "/tmp/tracer-tests";

pub enum Python {
    /// An interpreter of this machine.
    Host(PathBuf),
    /// CPython 3.14 in the Debian sid root.
    Sid,
}

/// The path of a test target (a file of tests/targets) on this machine.
pub fn target_script(name: &str) -> String {
    format!("{}/targets/{name}", env!("CARGO_MANIFEST_DIR"))
}

impl Python {
    /// pyenv's CPython 3.`minor` ("3.12").
    pub fn pyenv(minor: &str) -> Self {
        Python::Host(pyenv_python(minor))
    }

    /// The sid root; `None` (the test is skipped) when `cargo xtask test`
    /// did not set it, which under CI=true is a failure.
    fn sid_root() -> Option<PathBuf> {
        crate::given("TRACER_SID_ROOT", "CPython 3.14")
    }

    /// The command that runs the target `script` (a file of tests/targets)
    /// with `args`; `None` when it cannot run here (see [`Self::sid_root`]).
    pub fn command(&self, script: &str, args: &[&str]) -> Option<Command> {
        let mut command = match self {
            Python::Host(interpreter) => {
                let mut command = Command::new(interpreter);
                command.arg(target_script(script));
                command
            }
            Python::Sid => {
                let root = Self::sid_root()?;
                let inside = root.join(self.script_path(script).trim_start_matches('/'));
                std::fs::create_dir_all(inside.parent().expect("a directory"))
                    .expect("make the targets' directory in the root");
                std::fs::copy(target_script(script), &inside)
                    .expect("copy the target into the root");
                let mut root_arg = OsString::from("--root=");
                root_arg.push(&root);
                let mut command = Command::new("unshare");
                command
                    .arg("--mount")
                    .arg(root_arg)
                    .args(["--mount-proc", "python3.14"])
                    .arg(self.script_path(script));
                command
            }
        };
        command.args(args);
        Some(command)
    }

    /// The target `script` as the interpreter names it in frames.
    pub fn script_path(&self, script: &str) -> String {
        match self {
            Python::Host(_) => target_script(script),
            Python::Sid => format!("{DIR_IN_ROOT}/{script}"),
        }
    }

    /// A command of the target's interpreter (`python -m ...`) run beside
    /// the target `pid`: for sid, in its mount namespace and root, where
    /// its files have the paths the target knows them by.
    pub fn beside(&self, pid: u32, args: &[&str]) -> Command {
        let mut command = match self {
            Python::Host(interpreter) => Command::new(interpreter),
            Python::Sid => {
                let mut command = Command::new("nsenter");
                command
                    .arg(format!("--target={pid}"))
                    .args(["--mount", "--root", "python3.14"]);
                command
            }
        };
        command.args(args);
        command
    }
}
