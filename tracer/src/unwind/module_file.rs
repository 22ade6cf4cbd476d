//! An ELF file mapped by a traced process, opened while the process lives and
//! kept open, so its unwind tables and symbols stay readable after it exits
//! (or after the file is deleted or replaced on disk).

use std::{
    collections::HashMap,
    fs::File,
    ops::{Deref, Range},
    os::fd::AsRawFd,
    path::PathBuf,
    sync::Arc,
};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, read::ReadCache};

/// Bytes of one section, shared by the unwinder and the module.
#[derive(Clone, Default)]
pub struct SectionBytes(Arc<Vec<u8>>);

impl Deref for SectionBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// A loadable segment: file bytes `offset..offset + file_size` at `vaddr`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    vaddr: u64,
    offset: u64,
    file_size: u64,
    mem_size: u64,
}

#[derive(Clone)]
pub struct Section {
    pub svma: Range<u64>,
    pub data: Option<SectionBytes>,
}

pub struct ModuleFile {
    /// The path as the target sees it (for display).
    pub path: String,
    /// Kept open: symbolization reads it through /proc/self/fd.
    file: File,
    segments: Vec<Segment>,
    pub text: Option<Section>,
    pub got: Option<Section>,
    pub eh_frame: Option<Section>,
    pub eh_frame_hdr: Option<Section>,
    pub debug_frame: Option<SectionBytes>,
}

impl ModuleFile {
    /// Opens `file` (reachable as `path` in the target) and reads its unwind
    /// sections.
    pub fn open(file: File, path: String) -> Result<Self, object::Error> {
        let cache = ReadCache::new(file);
        let (segments, sections) = {
            let elf = object::File::parse(&cache)?;
            let segments = elf
                .segments()
                .map(|s| {
                    let (offset, file_size) = s.file_range();
                    Segment {
                        vaddr: s.address(),
                        offset,
                        file_size,
                        mem_size: s.size(),
                    }
                })
                .collect::<Vec<_>>();
            let section = |name: &str, with_data: bool| {
                let s = elf.section_by_name(name)?;
                let data = if with_data {
                    Some(SectionBytes(Arc::new(s.data().ok()?.to_vec())))
                } else {
                    None
                };
                Some(Section {
                    svma: s.address()..s.address() + s.size(),
                    data,
                })
            };
            let sections = [
                section(".text", false),
                section(".got", false),
                section(".eh_frame", true),
                section(".eh_frame_hdr", true),
                section(".debug_frame", true),
            ];
            (segments, sections)
        };
        let [text, got, eh_frame, eh_frame_hdr, debug_frame] = sections;
        Ok(Self {
            path,
            file: cache.into_inner(),
            segments,
            text,
            got,
            eh_frame,
            eh_frame_hdr,
            debug_frame: debug_frame.and_then(|s| s.data),
        })
    }

    /// The load bias (runtime address minus ELF virtual address) given that
    /// file offset `offset` is mapped at `start` in the process.
    pub fn load_bias(&self, start: u64, offset: u64) -> Option<u64> {
        const PAGE: u64 = 4096;
        let segment = self
            .segments
            .iter()
            .find(|s| s.offset & !(PAGE - 1) <= offset && offset < s.offset + s.file_size.max(1))?;
        let svma = segment
            .vaddr
            .wrapping_add(offset)
            .wrapping_sub(segment.offset);
        Some(start.wrapping_sub(svma))
    }

    /// Whether `svma` lies in a loadable segment of the file: an address
    /// outside them is not this file's code, whatever symbol precedes it.
    pub fn contains_svma(&self, svma: u64) -> bool {
        self.segments
            .iter()
            .any(|s| s.vaddr <= svma && svma - s.vaddr < s.file_size)
    }

    /// Whether `svma` lies in the pages the file's loadable segments span
    /// once loaded: a mapping of the file placed there with the same bias
    /// belongs to the same load.
    pub fn spans_svma(&self, svma: u64) -> bool {
        const PAGE: u64 = 4096;
        self.segments.iter().any(|s| {
            let start = s.vaddr & !(PAGE - 1);
            let end = s
                .vaddr
                .saturating_add(s.mem_size.max(s.file_size))
                .saturating_add(PAGE - 1)
                & !(PAGE - 1);
            start <= svma && svma < end
        })
    }

    /// A path under which the (still open) file can be read by this process.
    pub fn readable_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// The address range (ELF virtual addresses) of function `name`, from
    /// the symbol table or, in stripped files, the dynamic one.
    pub fn symbol_range(&self, name: &str) -> Option<std::ops::Range<u64>> {
        let cache = ReadCache::new(&self.file);
        let elf = object::File::parse(&cache).ok()?;
        elf.symbols()
            .chain(elf.dynamic_symbols())
            .find(|s| s.name() == Ok(name) && s.size() > 0)
            .map(|s| s.address()..s.address() + s.size())
    }

    /// The symbols whose names start with one of `prefixes` (symbol table
    /// and dynamic one): name and address range (ELF virtual addresses).
    /// One pass over the symbols, whose parsing is what costs (a node
    /// binary has hundreds of thousands).
    pub fn symbols_with_prefixes(&self, prefixes: &[&str]) -> Vec<(String, Range<u64>)> {
        let cache = ReadCache::new(&self.file);
        let Ok(elf) = object::File::parse(&cache) else {
            return Vec::new();
        };
        elf.symbols()
            .chain(elf.dynamic_symbols())
            .filter_map(|s| {
                let name = s.name().ok()?;
                prefixes
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                    .then(|| (name.to_string(), s.address()..s.address() + s.size()))
            })
            .collect()
    }

    /// The file name, for `module` in frames.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Module files shared by all traced processes, keyed by device and inode.
#[derive(Default)]
pub struct ModuleFiles {
    files: HashMap<(String, u64), Option<Arc<ModuleFile>>>,
}

impl ModuleFiles {
    /// The module for a file mapped by `pid` at `start..end`, opened through
    /// /proc so that it works across mount namespaces and for deleted files.
    /// Files that cannot be opened or parsed are remembered as such.
    pub fn get(
        &mut self,
        pid: u32,
        mapping: &crate::procfs::maps::Mapping,
    ) -> Option<Arc<ModuleFile>> {
        let key = (mapping.dev.clone(), mapping.inode);
        self.files
            .entry(key)
            .or_insert_with(|| {
                let path = mapping.path.clone()?;
                let file = open_mapped_file(pid, mapping.start, mapping.end, &path)?;
                match ModuleFile::open(file, path.clone()) {
                    Ok(module) => Some(Arc::new(module)),
                    Err(error) => {
                        log::debug!("cannot read {path} as ELF: {error}");
                        None
                    }
                }
            })
            .clone()
    }
}

fn open_mapped_file(pid: u32, start: u64, end: u64, path: &str) -> Option<File> {
    let map_file = format!("/proc/{pid}/map_files/{start:x}-{end:x}");
    File::open(&map_file)
        .or_else(|_| File::open(format!("/proc/{pid}/root{path}")))
        .map_err(|error| log::debug!("cannot open {path} of pid {pid}: {error}"))
        .ok()
}
