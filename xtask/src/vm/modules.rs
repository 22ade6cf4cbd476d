//! The kernel modules the guest needs to reach its root disk, with their
//! dependencies first. The packages ship no modules.dep (depmod makes it at
//! install time), so dependencies are read from each module's `.modinfo`;
//! compressed modules (`.ko.xz`, `.ko.zst`) are decompressed here, as
//! busybox's insmod cannot.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::vm::kernels::Kernel;

/// virtio_pci finds the disk, virtio_blk drives it (both built in on newer
/// kernels, modules on older ones; ext4 is built in on all).
const ROOT_DISK: [&str; 2] = ["virtio_pci", "virtio_blk"];

/// A module to insmod: its name and its uncompressed bytes.
pub struct Module {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The modules to load, in an order that loads each one's dependencies first.
pub fn root_disk_modules(kernel: &Kernel) -> anyhow::Result<Vec<Module>> {
    let files = module_files(&kernel.modules.join("kernel"))?;
    let builtin = builtin_modules(&kernel.modules)?;
    let mut loaded = Vec::new();
    for name in ROOT_DISK {
        add(name, &files, &builtin, &mut loaded, 0)?;
    }
    Ok(loaded)
}

fn add(
    name: &str,
    files: &HashMap<String, PathBuf>,
    builtin: &[String],
    loaded: &mut Vec<Module>,
    depth: usize,
) -> anyhow::Result<()> {
    if depth > 16 {
        bail!("module dependencies loop at {name}");
    }
    if builtin.iter().any(|b| b == name) || loaded.iter().any(|m| m.name == name) {
        return Ok(());
    }
    let path = files
        .get(name)
        .with_context(|| format!("module {name} is neither built in nor a file"))?;
    let bytes = decompressed(path)?;
    for dependency in depends(&bytes) {
        add(&dependency, files, builtin, loaded, depth + 1)?;
    }
    loaded.push(Module {
        name: name.to_string(),
        bytes,
    });
    Ok(())
}

/// Module name (dashes as underscores, as the kernel names them) to file.
fn module_files(dir: &Path) -> anyhow::Result<HashMap<String, PathBuf>> {
    let mut files = HashMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = module_name(&path) {
                files.insert(name, path);
            }
        }
    }
    Ok(files)
}

fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".ko", ".ko.xz", ".ko.zst"]
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))?;
    Some(stem.replace('-', "_"))
}

fn builtin_modules(modules: &Path) -> anyhow::Result<Vec<String>> {
    let path = modules.join("modules.builtin");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| module_name(Path::new(l)))
        .collect())
}

fn decompressed(path: &Path) -> anyhow::Result<Vec<u8>> {
    let tool = match path.extension().and_then(|e| e.to_str()) {
        Some("xz") => "xz",
        Some("zst") => "zstd",
        _ => return fs::read(path).with_context(|| format!("cannot read {}", path.display())),
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(path)
        .output()
        .with_context(|| format!("cannot run {tool} on {}", path.display()))?;
    if !out.status.success() {
        bail!("{tool} -dc {} failed ({})", path.display(), out.status);
    }
    Ok(out.stdout)
}

/// The `depends=a,b` entry of the module's NUL-separated `.modinfo` strings.
fn depends(module: &[u8]) -> Vec<String> {
    module
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::depends;

    #[test]
    fn depends_reads_the_modinfo_entry() {
        let bytes = b"\x7fELF..\0license=GPL\0depends=virtio,virtio_ring\0retpoline=Y\0";
        assert_eq!(depends(bytes), ["virtio", "virtio_ring"]);
        assert!(depends(b"\0depends=\0").is_empty());
    }
}
