//! Builds the kernel programs (tracer-ebpf) for the BPF target with aya-build,
//! twice: OUT_DIR/probes uses `bpf_loop` (Linux 5.17+), OUT_DIR/probes-bounded
//! (the `bounded-loops` feature) runs on older kernels. Both are embedded in
//! the binary. Needs the nightly toolchain with rust-src and bpf-linker:
//! `cargo xtask setup`. It also sets TRACER_COMMIT for `tracer --version`.

#[path = "build/commit.rs"]
mod commit;

use std::{fs, path::Path};

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    commit::emit(Path::new(&manifest_dir));
    let ebpf_dir = Path::new(&manifest_dir).join("../tracer-ebpf");
    let ebpf_dir = ebpf_dir.canonicalize()?;
    let Some(ebpf_dir) = ebpf_dir.to_str() else {
        anyhow::bail!("non-UTF-8 path {}", ebpf_dir.display());
    };
    if std::env::var_os("AYA_BUILD_SKIP").is_some() {
        return aya_build::build_ebpf([], aya_build::Toolchain::Nightly);
    }
    if which_bpf_linker().is_none() {
        anyhow::bail!("bpf-linker is not on PATH: run `cargo xtask setup` first");
    }
    let out_dir = std::env::var("OUT_DIR")?;
    let object = Path::new(&out_dir).join("probes");
    // Each build writes OUT_DIR/probes: the bounded one first, moved aside.
    for (features, name) in [
        (&["bounded-loops"][..], "probes-bounded"),
        (&[][..], "probes"),
    ] {
        let package = aya_build::Package {
            name: "tracer-ebpf",
            root_dir: ebpf_dir,
            features,
            ..Default::default()
        };
        aya_build::build_ebpf([package], aya_build::Toolchain::Nightly)?;
        let built = Path::new(&out_dir).join(name);
        if built != object {
            fs::rename(&object, &built)
                .with_context(|| format!("cannot move {} aside", object.display()))?;
        }
    }
    Ok(())
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|candidate| candidate.is_file())
}
