//! Builds the kernel programs (tracer-ebpf) for the BPF target with aya-build;
//! the object lands in OUT_DIR/probes and is embedded in the binary. Needs the
//! nightly toolchain with rust-src and bpf-linker: `cargo xtask setup`.

use std::path::Path;

fn main() -> anyhow::Result<()> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let ebpf_dir = Path::new(&manifest_dir).join("../tracer-ebpf");
    let ebpf_dir = ebpf_dir.canonicalize()?;
    let Some(ebpf_dir) = ebpf_dir.to_str() else {
        anyhow::bail!("non-UTF-8 path {}", ebpf_dir.display());
    };
    if std::env::var_os("AYA_BUILD_SKIP").is_none() && which_bpf_linker().is_none() {
        anyhow::bail!("bpf-linker is not on PATH: run `cargo xtask setup` first");
    }
    let package = aya_build::Package {
        name: "tracer-ebpf",
        root_dir: ebpf_dir,
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::Nightly)
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|candidate| candidate.is_file())
}
