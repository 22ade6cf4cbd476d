//! `cargo xtask demo`: trace the bundled asyncio service and show the report.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

use crate::command::{build_tracer, run, tracer_binary, workspace_root};

pub fn demo() -> anyhow::Result<()> {
    build_tracer()?;
    let script = workspace_root().join("demo/blocking_service.py");
    let mut service = Command::new("python3")
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start python3 demo/blocking_service.py")?;
    // It prints the slow upstream's port, then `ready PID`.
    let stdout = service.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let pid = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(pid) = line.strip_prefix("ready ") {
                    break pid.trim().to_string();
                }
            }
            _ => {
                let _ = service.kill();
                bail!("the demo service exited before it was ready");
            }
        }
    };
    eprintln!("demo: started demo/blocking_service.py as pid {pid}; tracing it for 6 s\n");
    let result = run(Command::new(tracer_binary()).args(["--pid", &pid, "--duration", "6s"]));
    let _ = service.kill();
    let _ = service.wait();
    result
}
