//! `tracer --version`: the release, the commit it was built from, and the
//! kernels it runs on — what a bug report needs first.

use std::sync::OnceLock;

/// The commit, set by build.rs (`unknown` outside a git checkout).
const COMMIT: &str = env!("TRACER_COMMIT");

/// The text after `tracer ` that `--version` prints.
pub fn long_version() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (commit {COMMIT})\nkernels: {}",
            env!("CARGO_PKG_VERSION"),
            crate::probes::kernel_support()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_release_commit_and_kernels() {
        let text = long_version();
        assert!(text.starts_with(env!("CARGO_PKG_VERSION")), "{text}");
        assert!(text.contains("(commit "), "{text}");
        assert!(text.contains("Linux 5.8+ with BTF"), "{text}");
        assert!(text.contains("bpf_loop object from 5.17"), "{text}");
        assert!(text.contains("tested on 5.10, 6.1, 6.12"), "{text}");
    }
}
