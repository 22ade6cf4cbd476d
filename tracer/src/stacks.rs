//! Stacks as captured, deduplicated, waiting for symbolization at the end of
//! the trace (one batch per module is much cheaper than one call per event).

use std::{collections::HashMap, sync::Arc};

use crate::{
    symbolize::{Symbolizer, jit::jit_frame, unknown_frame},
    trace::{Frame, FrameKind, Stack, StackId},
    unwind::{ModuleFile, NativeAddr},
};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RawFrame {
    /// An address in module number `module` (ELF virtual address).
    Native {
        module: u32,
        svma: u64,
    },
    /// Code in anonymous memory (a JIT's), named by the process's perf map
    /// if it has one.
    Jit {
        addr: u64,
        name: Option<Arc<str>>,
    },
    /// A user address outside any readable module.
    Unknown {
        addr: u64,
        region: Option<String>,
    },
    Kernel(u64),
    /// Python and JavaScript frames are resolved while the process lives.
    Python(Frame),
    /// A JavaScript frame: its function and those inlined there.
    Js(Vec<Frame>),
    Truncated,
}

#[derive(Default)]
pub struct StackTable {
    modules: Vec<Arc<ModuleFile>>,
    module_ids: HashMap<*const ModuleFile, u32>,
    stacks: Vec<Vec<RawFrame>>,
    ids: HashMap<Vec<RawFrame>, StackId>,
}

impl StackTable {
    pub fn native(&mut self, addr: NativeAddr) -> RawFrame {
        match addr {
            NativeAddr::Module { file, svma } => {
                let next = self.modules.len() as u32;
                let module = *self.module_ids.entry(Arc::as_ptr(&file)).or_insert(next);
                if module == next {
                    self.modules.push(file);
                }
                RawFrame::Native { module, svma }
            }
            NativeAddr::Jit { addr, name } => RawFrame::Jit { addr, name },
            NativeAddr::Unknown { addr, region } => RawFrame::Unknown { addr, region },
            NativeAddr::Js(frame) => RawFrame::Js(frame),
        }
    }

    /// The names of the native functions of `frames`, symbolized now (for
    /// decisions that cannot wait for the end of the trace).
    pub fn function_names(&self, frames: &[RawFrame], symbolizer: &Symbolizer) -> Vec<String> {
        frames
            .iter()
            .filter_map(|frame| match frame {
                RawFrame::Native { module, svma } => {
                    let file = self.modules.get(*module as usize)?;
                    Some(symbolizer.module_frames(file, &[*svma]))
                }
                _ => None,
            })
            .flatten()
            .flatten()
            .map(|frame| frame.function)
            .collect()
    }

    pub fn intern(&mut self, frames: Vec<RawFrame>) -> StackId {
        if let Some(&id) = self.ids.get(&frames) {
            return id;
        }
        let id = self.stacks.len() as StackId;
        self.stacks.push(frames.clone());
        self.ids.insert(frames, id);
        id
    }

    /// Symbolizes every stack; the result is indexed by [`StackId`].
    pub fn symbolize(self, symbolizer: &Symbolizer) -> Vec<Stack> {
        self.name(&self.stacks, symbolizer)
    }

    /// Symbolizes the stacks `ids` now, in that order (for `tracer top`,
    /// which shows stacks while the trace goes on).
    pub fn symbolize_some(&self, ids: &[StackId], symbolizer: &Symbolizer) -> Vec<Stack> {
        let stacks: Vec<Vec<RawFrame>> = ids
            .iter()
            .map(|&id| self.stacks.get(id as usize).cloned().unwrap_or_default())
            .collect();
        self.name(&stacks, symbolizer)
    }

    /// Names the frames of `stacks`: one symbolizer call per module.
    fn name(&self, stacks: &[Vec<RawFrame>], symbolizer: &Symbolizer) -> Vec<Stack> {
        let mut by_module: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut kernel = Vec::new();
        for frame in stacks.iter().flatten() {
            match frame {
                RawFrame::Native { module, svma } => {
                    by_module.entry(*module).or_default().push(*svma)
                }
                RawFrame::Kernel(addr) => kernel.push(*addr),
                _ => {}
            }
        }
        let mut names: HashMap<RawFrame, Vec<Frame>> = HashMap::new();
        for (module, mut svmas) in by_module {
            svmas.sort_unstable();
            svmas.dedup();
            let frames = symbolizer.module_frames(&self.modules[module as usize], &svmas);
            for (svma, frames) in svmas.into_iter().zip(frames) {
                names.insert(RawFrame::Native { module, svma }, frames);
            }
        }
        kernel.sort_unstable();
        kernel.dedup();
        for (addr, frames) in kernel.iter().zip(symbolizer.kernel_frames(&kernel)) {
            names.insert(RawFrame::Kernel(*addr), frames);
        }
        stacks
            .iter()
            .map(|raw| {
                raw.iter()
                    .flat_map(|frame| match frame {
                        RawFrame::Native { .. } | RawFrame::Kernel(_) => {
                            names.get(frame).cloned().unwrap_or_default()
                        }
                        RawFrame::Unknown { addr, region } => {
                            vec![unknown_frame(*addr, region, FrameKind::Native)]
                        }
                        RawFrame::Jit { addr, name } => vec![jit_frame(*addr, name.as_deref())],
                        RawFrame::Python(frame) => vec![frame.clone()],
                        RawFrame::Js(frames) => frames.clone(),
                        RawFrame::Truncated => vec![truncated_frame()],
                    })
                    .collect()
            })
            .collect()
    }
}

fn truncated_frame() -> Frame {
    Frame {
        function: "[truncated: unwinding stopped here]".to_string(),
        file: None,
        line: None,
        column: None,
        module: None,
        kind: FrameKind::Truncated,
    }
}
