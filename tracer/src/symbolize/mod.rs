//! Addresses to function names, files and lines, with blazesym. One
//! long-lived [`Symbolizer`]: blazesym caches parsed files inside it.
//!
//! Never a wrong name: an address is named only by a symbol of the file
//! mapped there whose range holds it; code in anonymous memory (a JIT's) is
//! named by the runtime's perf map ([`perf_map`]) or shown as `[JIT] 0x…`.

pub mod jit;
pub mod perf_map;

use blazesym::symbolize::{
    Input, Symbolized, Symbolizer as Blazesym,
    source::{Elf, Kernel, Source},
};

use crate::{
    trace::{Frame, FrameKind},
    unwind::ModuleFile,
};

pub struct Symbolizer {
    inner: Blazesym,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        Self {
            inner: Blazesym::builder()
                .enable_code_info(true)
                .enable_inlined_fns(true)
                .build(),
        }
    }

    /// Frames for addresses (ELF virtual addresses) in one module. Each
    /// address gives one frame, or several where functions were inlined
    /// (innermost first).
    /// Addresses outside the file's loadable segments are not looked up:
    /// the nearest symbol before them (often `_end`) is not their name.
    pub fn module_frames(&self, file: &ModuleFile, svmas: &[u64]) -> Vec<Vec<Frame>> {
        let source = Source::Elf(Elf::new(file.readable_path()));
        let module = Some(file.name().to_string());
        let inside: Vec<u64> = svmas
            .iter()
            .copied()
            .filter(|&svma| file.contains_svma(svma))
            .collect();
        let mut named = match self.inner.symbolize(&source, Input::VirtOffset(&inside)) {
            Ok(symbolized) => symbolized
                .into_iter()
                .zip(&inside)
                .map(|(sym, &svma)| to_frames(sym, svma, &module, FrameKind::Native))
                .collect(),
            Err(error) => {
                log::debug!("symbolizing {}: {error}", file.path);
                Vec::new()
            }
        }
        .into_iter();
        svmas
            .iter()
            .map(|&svma| {
                let frames = file.contains_svma(svma).then(|| named.next()).flatten();
                frames.unwrap_or_else(|| vec![unknown_frame(svma, &module, FrameKind::Native)])
            })
            .collect()
    }

    /// Frames for kernel addresses, from /proc/kallsyms.
    pub fn kernel_frames(&self, addrs: &[u64]) -> Vec<Vec<Frame>> {
        let source = Source::Kernel(Kernel {
            // kallsyms names every function; a vmlinux search only costs time.
            vmlinux: blazesym::MaybeDefault::None,
            ..Kernel::default()
        });
        let module = Some("kernel".to_string());
        match self.inner.symbolize(&source, Input::AbsAddr(addrs)) {
            Ok(symbolized) => symbolized
                .into_iter()
                .zip(addrs)
                .map(|(sym, &addr)| to_frames(sym, addr, &module, FrameKind::Kernel))
                .collect(),
            Err(error) => {
                log::debug!("symbolizing kernel addresses: {error}");
                addrs
                    .iter()
                    .map(|&a| vec![unknown_frame(a, &module, FrameKind::Kernel)])
                    .collect()
            }
        }
    }
}

fn to_frames(
    sym: Symbolized<'_>,
    addr: u64,
    module: &Option<String>,
    kind: FrameKind,
) -> Vec<Frame> {
    let Symbolized::Sym(sym) = sym else {
        return vec![unknown_frame(addr, module, kind)];
    };
    if !names_address(&sym.name, sym.offset, sym.size) {
        return vec![unknown_frame(addr, module, kind)];
    }
    let location = |info: Option<&blazesym::symbolize::CodeInfo<'_>>| {
        info.map(|info| (info.to_path().display().to_string(), info.line))
    };
    let frame = |function: &str, location: Option<(String, Option<u32>)>| {
        let (file, line) = location.map_or((None, None), |(f, l)| (Some(f), l));
        Frame {
            function: function.to_string(),
            file,
            line,
            column: None,
            module: module.clone(),
            kind,
        }
    };
    // blazesym lists inlined calls outermost first; stacks are innermost first.
    let mut frames: Vec<Frame> = sym
        .inlined
        .iter()
        .rev()
        .map(|inlined| frame(&inlined.name, location(inlined.code_info.as_ref())))
        .collect();
    frames.push(frame(&sym.name, location(sym.code_info.as_deref())));
    frames
}

/// Linker-made markers of where sections end: never a function, and the
/// nearest symbol before any address past the last function.
const SECTION_MARKERS: &[&str] = &[
    "_end",
    "end",
    "_edata",
    "edata",
    "_etext",
    "etext",
    "__bss_start",
    "__end__",
];

/// Whether a symbol found for an address (`offset` bytes past its start)
/// may name it: it is a function-like symbol and, when the symbol table
/// gives its size, its range holds the address.
fn names_address(name: &str, offset: usize, size: Option<usize>) -> bool {
    let inside = match size {
        Some(size) if size > 0 => offset < size,
        // Size unknown (hand-written assembly without `.size`): trusted.
        _ => true,
    };
    inside && !SECTION_MARKERS.contains(&name)
}

/// A frame for an address nothing could name: `0x7f12...` in `module`.
pub fn unknown_frame(addr: u64, module: &Option<String>, kind: FrameKind) -> Frame {
    Frame {
        function: format!("{addr:#x}"),
        file: None,
        line: None,
        column: None,
        module: module.clone(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symbol_names_only_addresses_in_its_range() {
        assert!(names_address("uv_run", 0x10, Some(0x200)));
        assert!(!names_address("uv_run", 0x200, Some(0x200)));
        assert!(!names_address("uv_run", 0x7f00_0000_0000, Some(0x200)));
        assert!(names_address("__restore_rt", 4, None));
        assert!(names_address("clone3", 4, Some(0)));
        assert!(!names_address("_end", 0x7f00_0000_0000, Some(0)));
        assert!(!names_address("__bss_start", 0, None));
    }
}
