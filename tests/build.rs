//! Compiles the C targets in targets/ the way distro binaries are built:
//! optimised and without frame pointers (with DWARF line info).

use std::{env, path::PathBuf, process::Command};

const C_TARGETS: &[&str] = &[
    "syscall_counts",
    "cpu_split",
    "many_threads",
    "load",
    "zero_reads",
    "page_faults",
    "disk_then_sleep",
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=targets/tick_loop.h");
    for name in C_TARGETS {
        let source = format!("targets/{name}.c");
        println!("cargo:rerun-if-changed={source}");
        let binary = out.join(name);
        let status = Command::new("gcc")
            .args(["-O2", "-fomit-frame-pointer", "-g", "-o"])
            .arg(&binary)
            .arg(&source)
            .args(["-lm", "-pthread"])
            .status()
            .expect("gcc is needed to build the C test targets");
        assert!(status.success(), "gcc failed on {source}");
        println!(
            "cargo:rustc-env=TARGET_{}={}",
            name.to_uppercase(),
            binary.display()
        );
    }
}
