//! The ELF image that holds a process's CPython runtime — `libpython3.X.so`,
//! or an executable with libpython linked in statically (Debian's python3.11)
//! — and what its dynamic symbols say: where `_PyRuntime` and `PyCode_Type`
//! are in the process, and which version it is.

use std::{
    fs::{self, File},
    path::Path,
};

use object::{Object, ObjectSection, ObjectSymbol, read::ReadCache};

use super::PythonError;
use crate::{
    procfs::{
        maps::{Mapping, read_maps},
        status::proc_path,
    },
    unwind::ModuleFiles,
};

#[derive(Debug)]
pub struct PythonImage {
    /// The file as the target sees it.
    pub path: String,
    /// Address of `_PyRuntime` in the process.
    pub runtime: u64,
    /// Address of `PyCode_Type` in the process.
    pub code_type: u64,
    /// The minor version (X in 3.X), when the image tells it.
    pub minor: Option<u32>,
}

/// The process's CPython image, or `None` if it has none (not Python, or
/// older than 3.7, which has no `_PyRuntime`).
pub fn find_image(pid: u32) -> Result<Option<PythonImage>, PythonError> {
    let maps = read_maps(pid).map_err(|source| PythonError::Maps { pid, source })?;
    match python_mapping(pid, &maps) {
        Some(mapping) => read_image(pid, mapping),
        None => Ok(None),
    }
}

/// A `libpython3.X.so*` mapping, else the main executable's first mapping.
fn python_mapping(pid: u32, maps: &[Mapping]) -> Option<&Mapping> {
    let files = || maps.iter().filter(|m| m.is_file());
    files()
        .find(|m| m.path.as_deref().is_some_and(is_libpython))
        .or_else(|| {
            let exe = fs::read_link(proc_path(pid, "exe")).ok()?;
            files().find(|m| m.path.as_deref().map(Path::new) == Some(exe.as_path()))
        })
}

fn read_image(pid: u32, mapping: &Mapping) -> Result<Option<PythonImage>, PythonError> {
    let path = mapping.path.clone().unwrap_or_default();
    let open_error = || PythonError::OpenImage {
        pid,
        path: path.clone(),
    };
    let module = ModuleFiles::default()
        .get(pid, mapping)
        .ok_or_else(open_error)?;
    let bias = module
        .load_bias(mapping.start, mapping.offset)
        .ok_or_else(|| PythonError::LoadBias {
            pid,
            path: path.clone(),
        })?;
    let file = File::open(module.readable_path()).map_err(|_| open_error())?;
    let cache = ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|source| PythonError::Symbols {
        path: path.clone(),
        source,
    })?;

    let (mut runtime, mut code_type, mut version) = (None, None, None);
    for symbol in elf.dynamic_symbols().filter(|s| s.is_definition()) {
        match symbol.name() {
            Ok("_PyRuntime") => runtime = Some(symbol.address()),
            Ok("PyCode_Type") => code_type = Some(symbol.address()),
            Ok("Py_Version") => version = read_constant(&elf, &symbol),
            _ => {}
        }
    }
    let Some(runtime) = runtime else {
        log::debug!("pid {pid}: {path} exports no _PyRuntime, so it is no CPython 3.7+");
        return Ok(None);
    };
    let code_type = code_type.ok_or_else(|| PythonError::MissingSymbol {
        path: path.clone(),
        symbol: "PyCode_Type",
    })?;
    let minor = version
        .and_then(minor_from_version_hex)
        .or_else(|| minor_from_file_name(&path));
    Ok(Some(PythonImage {
        runtime: runtime.wrapping_add(bias),
        code_type: code_type.wrapping_add(bias),
        minor,
        path,
    }))
}

/// The value of a constant integer symbol (`Py_Version`), from the file.
fn read_constant<'data, R: object::ReadRef<'data>>(
    elf: &object::File<'data, R>,
    symbol: &object::Symbol<'data, '_, R>,
) -> Option<u64> {
    let section = elf.section_by_index(symbol.section_index()?).ok()?;
    let bytes = section.data_range(symbol.address(), symbol.size()).ok()??;
    match bytes.len() {
        4 => bytes.first_chunk().map(|b| u32::from_le_bytes(*b).into()),
        8 => bytes.first_chunk().map(|b| u64::from_le_bytes(*b)),
        _ => None,
    }
}

/// 3 in 3.X from `PY_VERSION_HEX` (0x030b07f0 for 3.11.7).
fn minor_from_version_hex(hex: u64) -> Option<u32> {
    (hex >> 24 == 3).then_some(((hex >> 16) & 0xff) as u32)
}

fn is_libpython(path: &str) -> bool {
    let name = file_name(path);
    name.starts_with("libpython") && name.contains(".so") && minor_from_file_name(name).is_some()
}

/// X from `.../libpython3.X.so.1.0`, `libpython3.Xm.so`, `.../python3.X`.
fn minor_from_file_name(path: &str) -> Option<u32> {
    let name = file_name(path);
    let rest = name.strip_prefix("lib").unwrap_or(name);
    let rest = rest.strip_prefix("python3.")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..digits)?.parse().ok()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_version_from_file_names() {
        assert_eq!(
            minor_from_file_name("/opt/py/lib/libpython3.10.so.1.0"),
            Some(10)
        );
        assert_eq!(minor_from_file_name("libpython3.7m.so.1.0"), Some(7));
        assert_eq!(minor_from_file_name("/usr/bin/python3.11"), Some(11));
        assert_eq!(minor_from_file_name("/usr/lib/libpython3.so"), None);
        assert_eq!(minor_from_file_name("/usr/bin/python3"), None);
        assert_eq!(minor_from_file_name("/usr/lib/libpython2.7.so.1.0"), None);
    }

    #[test]
    fn libpython_is_recognised_by_name() {
        assert!(is_libpython(
            "/root/.pyenv/versions/3.8.18/lib/libpython3.8.so.1.0"
        ));
        assert!(!is_libpython("/usr/lib/libpython3.so"));
        assert!(!is_libpython("/usr/bin/python3.11"));
    }

    #[test]
    fn minor_version_from_py_version() {
        assert_eq!(minor_from_version_hex(0x030b_07f0), Some(11));
        assert_eq!(minor_from_version_hex(0x030d_00f0), Some(13));
        assert_eq!(minor_from_version_hex(0x0207_12f0), None);
    }

    #[test]
    fn a_process_without_python_has_no_image() {
        let image = find_image(std::process::id()).expect("read own maps");
        assert!(image.is_none(), "{image:?}");
    }
}
