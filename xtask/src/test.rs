//! `cargo xtask test` and `cargo xtask lint`.

use std::process::Command;

use crate::command::{build_tracer, cargo, run, tracer_binary, workspace_root};

/// Unit and integration tests of the default members (all but the eBPF
/// crate, which only builds for the BPF target), in release mode so that the tracer library,
/// the binary and the eBPF object are built once; then the integration tests
/// that prove the tracer works, in the other kernels of the matrix (vm-test).
pub fn test(filter: Option<&str>) -> anyhow::Result<()> {
    build_tracer()?;
    // The asyncio stall tests run the demo service on uvloop too; the pprof
    // test reads the profiles with `go tool pprof`; the metrics test scrapes
    // with a real Prometheus.
    crate::python::ensure_packages(&["uvloop"])?;
    // The task tests run every pyenv CPython on uvloop too.
    for python in crate::python::pyenv_pythons() {
        crate::python::ensure_packages_in(python.as_os_str(), &["uvloop"])?;
    }
    crate::apt::ensure(&[("/usr/bin/go", "golang-go")], &[])?;
    crate::apt::ensure(&[("/usr/bin/prometheus", "prometheus")], &[])?;
    // `tracer top` runs in a tmux terminal; its screen is shot as a PNG
    // (aha turns the capture into HTML, headless Chromium shoots it).
    crate::apt::ensure(
        &[
            ("/usr/bin/tmux", "tmux"),
            ("/usr/bin/aha", "aha"),
            ("/usr/bin/chromium", "chromium"),
        ],
        &[],
    )?;
    // CPython 3.14 targets run in a Debian sid root, as in a container; the
    // packages users install (`dist`) are installed in bookworm's and sid's
    // (tests/tests/dist.rs). debootstrap mostly waits on the network: the
    // roots are made while the packages build.
    let (roots, dist) = std::thread::scope(|scope| {
        let roots = scope.spawn(|| {
            anyhow::Ok((
                crate::roots::ensure(&crate::roots::SID_PYTHON314)?,
                crate::roots::ensure(&crate::roots::BOOKWORM_PYTHON311)?,
            ))
        });
        let dist = crate::dist::dist();
        (roots.join(), dist)
    });
    let (sid, bookworm) =
        roots.map_err(|_| anyhow::anyhow!("making the Debian roots panicked"))??;
    let dist = dist?;
    // The JavaScript-frame tests run on Node 18 and 22 too.
    let nodes = crate::node::ensure()?;
    crate::roots::ensure_wheel(&sid, 14, "uvloop")?;
    let mut command = cargo();
    command.envs(nodes);
    command
        .args(["test", "--release"])
        .env("TRACER_BIN", tracer_binary())
        .env("TRACER_SID_ROOT", sid)
        .env("TRACER_BOOKWORM_ROOT", bookworm)
        .env("TRACER_WHEEL", dist.wheel)
        .env("TRACER_DEB", dist.deb);
    if let Some(filter) = filter {
        command.arg(filter);
    }
    // One test at a time: the integration tests time real targets on a
    // 2-core machine, and two traced targets at once compete for the CPU.
    command.args(["--", "--test-threads=1"]);
    run(&mut command)?;
    if let Some(filter) = filter.filter(|f| !crate::vm::has_test(f)) {
        eprintln!(
            "xtask: no test of the kernel matrix has {filter:?} in its name: vm-test skipped"
        );
        return Ok(());
    }
    crate::vm::vm_test(&crate::vm::Options {
        kernels: Vec::new(),
        only: filter.map(str::to_string),
    })
}

pub fn lint() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--release",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The kernel programs build for the BPF target with nightly, in both
    // variants (with bpf_loop, and bounded loops for older kernels).
    for features in ["", "bounded-loops"] {
        run(Command::new("rustup")
            .current_dir(workspace_root())
            .args([
                "run",
                "nightly",
                "cargo",
                "clippy",
                "--release",
                "--package",
                "tracer-ebpf",
                "--features",
                features,
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
                "--target-dir",
                "target/ebpf-clippy",
                "--",
                "-D",
                "warnings",
            ])
            .env(
                "CARGO_ENCODED_RUSTFLAGS",
                "--cfg=bpf_target_arch=\"x86_64\"",
            ))?;
    }
    Ok(())
}
