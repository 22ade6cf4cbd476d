//! Addresses to function names, files and lines, with blazesym. One
//! long-lived [`Symbolizer`]: blazesym caches parsed files inside it.

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
    pub fn module_frames(&self, file: &ModuleFile, svmas: &[u64]) -> Vec<Vec<Frame>> {
        let source = Source::Elf(Elf::new(file.readable_path()));
        let module = Some(file.name().to_string());
        match self.inner.symbolize(&source, Input::VirtOffset(svmas)) {
            Ok(symbolized) => symbolized
                .into_iter()
                .zip(svmas)
                .map(|(sym, &svma)| to_frames(sym, svma, &module, FrameKind::Native))
                .collect(),
            Err(error) => {
                log::debug!("symbolizing {}: {error}", file.path);
                svmas
                    .iter()
                    .map(|&a| vec![unknown_frame(a, &module, FrameKind::Native)])
                    .collect()
            }
        }
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
    let location = |info: Option<&blazesym::symbolize::CodeInfo<'_>>| {
        info.map(|info| (info.to_path().display().to_string(), info.line))
    };
    let frame = |function: &str, location: Option<(String, Option<u32>)>| {
        let (file, line) = location.map_or((None, None), |(f, l)| (Some(f), l));
        Frame {
            function: function.to_string(),
            file,
            line,
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

/// A frame for an address nothing could name: `0x7f12...` in `module`.
pub fn unknown_frame(addr: u64, module: &Option<String>, kind: FrameKind) -> Frame {
    Frame {
        function: format!("{addr:#x}"),
        file: None,
        line: None,
        module: module.clone(),
        kind,
    }
}
