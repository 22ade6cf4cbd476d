//! The kernel struct offsets the probes need, looked up in the BTF.

use tracer_common::KernelOffsets;

use super::btf::{BtfError, KernelBtf};

/// Offsets from a kernel's BTF. The scheduler fields are required;
/// the others only enable extras (Python < 3.11 thread matching, socket
/// addresses), so a missing one is logged and marked MISSING.
pub fn from_btf(btf: &KernelBtf) -> Result<KernelOffsets, BtfError> {
    let optional = |structure: &str, path: &[&str]| match btf.offset_of(structure, path) {
        Ok(offset) => offset,
        Err(error) => {
            log::warn!("{error}: the feature that needs it is off");
            KernelOffsets::MISSING
        }
    };
    Ok(KernelOffsets {
        task_pid: btf.offset_of("task_struct", &["pid"])?,
        task_stack: btf.offset_of("task_struct", &["stack"])?,
        task_flags: btf.offset_of("task_struct", &["flags"])?,
        task_runtime: btf.offset_of("task_struct", &["se", "sum_exec_runtime"])?,
        task_fsbase: optional("task_struct", &["thread", "fsbase"]),
        task_state: btf
            .offset_of("task_struct", &["__state"])
            .or_else(|_| btf.offset_of("task_struct", &["state"]))?,
        task_files: optional("task_struct", &["files"]),
        files_fdt: optional("files_struct", &["fdt"]),
        fdtable_max_fds: optional("fdtable", &["max_fds"]),
        fdtable_fd: optional("fdtable", &["fd"]),
        file_inode: optional("file", &["f_inode"]),
        file_private_data: optional("file", &["private_data"]),
        inode_mode: optional("inode", &["i_mode"]),
        inode_ino: optional("inode", &["i_ino"]),
        socket_sk: optional("socket", &["sk"]),
        sock_family: optional("sock", &["__sk_common", "skc_family"]),
        sock_daddr: optional("sock", &["__sk_common", "skc_daddr"]),
        sock_rcv_saddr: optional("sock", &["__sk_common", "skc_rcv_saddr"]),
        sock_dport: optional("sock", &["__sk_common", "skc_dport"]),
        sock_num: optional("sock", &["__sk_common", "skc_num"]),
        sock_v6_daddr: optional("sock", &["__sk_common", "skc_v6_daddr"]),
        sock_v6_rcv_saddr: optional("sock", &["__sk_common", "skc_v6_rcv_saddr"]),
        sock_protocol: optional("sock", &["sk_protocol"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_offsets_found_on_this_kernel() {
        let k = from_btf(&KernelBtf::from_sys_fs().unwrap()).unwrap();
        for (name, offset) in [
            ("fsbase", k.task_fsbase),
            ("files", k.task_files),
            ("fdt", k.files_fdt),
            ("fd", k.fdtable_fd),
            ("f_inode", k.file_inode),
            ("private_data", k.file_private_data),
            ("i_ino", k.inode_ino),
            ("sk", k.socket_sk),
            ("skc_num", k.sock_num),
            ("sk_protocol", k.sock_protocol),
        ] {
            assert_ne!(offset, KernelOffsets::MISSING, "{name}");
            assert_ne!(offset, 0, "{name}");
        }
        // Fields the kernel lays out next to each other.
        assert_eq!(k.sock_rcv_saddr, k.sock_daddr + 4);
        assert_eq!(k.sock_num, k.sock_dport + 2);
    }
}
