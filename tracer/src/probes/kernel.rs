//! What the running kernel offers the probes: the struct offsets they read,
//! which of the two kernel objects it can run, and why it cannot run
//! either (one clear line: the kernel, what is missing, the minimum).

use tracer_common::KernelOffsets;

use super::{
    btf::{BtfError, KernelBtf},
    kernel_offsets,
};

/// The oldest kernel the probes can load on: the BPF ring buffer is 5.8.
const MINIMUM: (u32, u32) = (5, 8);
/// Where `bpf_loop` appeared; before it, the bounded-loops object runs.
const BPF_LOOP_SINCE: &str = "5.17";
/// Where `sched_switch` began to pass the previous task's state.
const SWITCH_STATE_ARG_SINCE: (u32, u32) = (5, 18);
pub const TESTED: &str = "5.10, 6.1, 6.12 and 6.18";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "Linux {release} is too old: tracer needs {}.{} or newer (the BPF ring buffer); \
         it is tested on {TESTED}",
        MINIMUM.0,
        MINIMUM.1
    )]
    TooOld { release: String },
    #[error(
        "Linux {release} has no BTF (/sys/kernel/btf/vmlinux): tracer needs a kernel built \
         with CONFIG_DEBUG_INFO_BTF=y, as Debian, Ubuntu, Fedora and RHEL ship them"
    )]
    NoBtf { release: String },
    #[error("Linux {release}: {source}")]
    Btf {
        release: String,
        #[source]
        source: BtfError,
    },
}

/// The running kernel, as the probes need to know it.
pub struct RunningKernel {
    pub release: String,
    pub offsets: KernelOffsets,
    /// The `bpf_loop` helper (5.17+): Python walks of any length.
    pub bpf_loop: bool,
    /// `sched_switch` passes the previous task's state (5.18+).
    pub switch_state_arg: bool,
}

impl RunningKernel {
    pub fn inspect() -> Result<Self, KernelError> {
        let release = release();
        let version = version(&release);
        if version.is_some_and(|v| v < MINIMUM) {
            return Err(KernelError::TooOld { release });
        }
        let btf = match KernelBtf::from_sys_fs() {
            Ok(btf) => btf,
            Err(BtfError::Read(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KernelError::NoBtf { release });
            }
            Err(source) => return Err(KernelError::Btf { release, source }),
        };
        let offsets = match kernel_offsets::from_btf(&btf) {
            Ok(offsets) => offsets,
            Err(source) => return Err(KernelError::Btf { release, source }),
        };
        Ok(Self {
            bpf_loop: btf.has_enumerator("BPF_FUNC_loop"),
            switch_state_arg: version.is_none_or(|v| v >= SWITCH_STATE_ARG_SINCE),
            release,
            offsets,
        })
    }

    /// What tracing on this kernel cannot do, one line each, for the report.
    pub fn limits(&self) -> Vec<String> {
        let mut limits = Vec::new();
        if !self.bpf_loop {
            limits.push(format!(
                "Linux {} has no bpf_loop (since {BPF_LOOP_SINCE}): Python stacks stop after \
                 24 frames, a thread's Python state is looked for among the interpreter's \
                 16 newest threads, and no asyncio Task is named",
                self.release
            ));
        }
        limits
    }
}

/// The kernels this build runs on, for `tracer --version`.
pub fn support() -> String {
    format!(
        "Linux {}.{}+ with BTF: the bpf_loop object from {BPF_LOOP_SINCE}, the bounded-loops \
         object before (Python stacks of up to 24 frames); tested on {TESTED}",
        MINIMUM.0, MINIMUM.1
    )
}

/// `uname -r`.
fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|_| "(unknown version)".to_string())
}

/// The major and minor version of a release string, e.g. (6, 1) of
/// "6.1.0-40-cloud-amd64".
fn version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_of_release_strings() {
        assert_eq!(version("6.1.0-40-cloud-amd64"), Some((6, 1)));
        assert_eq!(version("5.10.0-35-cloud-amd64"), Some((5, 10)));
        assert_eq!(version("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(version("4.19.0"), Some((4, 19)));
        assert_eq!(version("weird"), None);
        assert!(version("5.4.0").is_some_and(|v| v < MINIMUM));
        assert!(version("5.10.0").is_some_and(|v| v >= MINIMUM));
    }

    #[test]
    fn this_kernel_runs_the_bpf_loop_object_without_limits() {
        let kernel = RunningKernel::inspect().expect("this kernel has BTF");
        assert!(kernel.bpf_loop, "Linux {} has bpf_loop", kernel.release);
        assert!(kernel.limits().is_empty());
    }
}
