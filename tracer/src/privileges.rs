//! What the kernel requires of us, checked up front so the user gets one clear
//! sentence instead of a failed bpf() call.

use std::{fs, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "tracer needs root, or the capabilities {missing} (to load eBPF programs and read the \
         target's memory): run it with sudo, or grant them once with \
         `sudo setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep {exe}`"
    )]
    MissingCapabilities { missing: String, exe: String },
    #[error(
        "this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): tracer needs Linux >= 5.8 \
         built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
}

const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capability set of this process.
fn effective_capabilities() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Names of the capabilities tracer needs that `caps` lacks. CAP_SYS_ADMIN
/// stands in for CAP_BPF and CAP_PERFMON, as on kernels before 5.8.
pub fn missing_capabilities(caps: u64) -> Vec<&'static str> {
    let has = |cap: u32| caps & (1 << cap) != 0;
    let admin = has(CAP_SYS_ADMIN);
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !admin {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !admin {
        missing.push("CAP_PERFMON");
    }
    if !has(CAP_SYS_PTRACE) {
        missing.push("CAP_SYS_PTRACE");
    }
    missing
}

pub fn check() -> Result<(), PrivilegeError> {
    let missing = missing_capabilities(effective_capabilities());
    if !missing.is_empty() {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tracer".to_string());
        return Err(PrivilegeError::MissingCapabilities {
            missing: missing.join(", "),
            exe,
        });
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(PrivilegeError::NoBtf);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_capabilities() {
        assert_eq!(
            missing_capabilities(0),
            vec!["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"]
        );
        let all = (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_SYS_PTRACE);
        assert!(missing_capabilities(all).is_empty());
        let admin = (1 << CAP_SYS_ADMIN) | (1 << CAP_SYS_PTRACE);
        assert!(missing_capabilities(admin).is_empty());
        assert_eq!(
            missing_capabilities(1 << CAP_BPF),
            vec!["CAP_PERFMON", "CAP_SYS_PTRACE"]
        );
    }
}
