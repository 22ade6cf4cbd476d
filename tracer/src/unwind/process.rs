//! The modules mapped in one traced process, and unwinding its stacks.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use framehop::{
    ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder,
    x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64},
};
use tracer_common::UserRegs;

use super::module_file::{ModuleFile, ModuleFiles, SectionBytes};
use crate::{
    procfs::maps::{Mapping, read_maps},
    symbolize::perf_map::PerfMap,
    trace::Frame,
    v8::{JsRuntime, StackCopy, Tier},
};

/// Frames beyond this are not unwound (a runaway or corrupt stack).
const MAX_FRAMES: usize = 256;

/// Where a user address lies: in a known ELF module, or elsewhere.
#[derive(Clone)]
pub enum NativeAddr {
    /// `svma` is the address as the ELF file states it (runtime - bias).
    Module { file: Arc<ModuleFile>, svma: u64 },
    /// In anonymous executable memory (a JIT's code), or in memory mapped
    /// since maps were read that the process's perf map names: never an
    /// ELF symbol's. `name` is the perf map's, if it has one.
    Jit { addr: u64, name: Option<Arc<str>> },
    /// Not in a file we could read: `[vdso]`, or no mapping at all.
    Unknown { addr: u64, region: Option<String> },
    /// JavaScript, named from V8's heap (`v8`): the frame's function and
    /// those inlined into its code there, innermost first.
    Js(Vec<Frame>),
}

/// An unwound stack: addresses innermost first, already adjusted for lookup
/// (return addresses minus one, so they point into the calling instruction).
pub struct Unwound {
    pub frames: Vec<NativeAddr>,
    /// The unwinder stopped before the outermost frame.
    pub truncated: bool,
}

struct LoadedModule {
    dev: String,
    inode: u64,
    start: u64,
    end: u64,
    /// The file's mappings within start..end: other memory can lie between
    /// them (V8 reserves its code space next to the binary's remapped
    /// builtins), and an address there is not this file's.
    ranges: Vec<(u64, u64)>,
    bias: u64,
    file: Arc<ModuleFile>,
}

pub struct ProcessModules {
    pid: u32,
    modules: Vec<LoadedModule>,
    /// Non-file executable mappings (JIT, vdso, ...) for naming unknown
    /// addresses.
    others: Vec<Mapping>,
    /// Names of JIT code, if the process writes a perf map.
    perf_map: PerfMap,
    /// V8, if the process runs it: names JavaScript frames.
    js: Option<JsRuntime>,
    unwinder: UnwinderX86_64<SectionBytes>,
    cache: CacheX86_64,
    /// Pages of addresses a refresh did not place in any module (JIT code,
    /// the garbage end of a stack): they must not cause another refresh.
    unplaceable: HashSet<u64>,
    last_refresh: Instant,
}

/// Reading /proc/PID/maps costs; a process is re-read at most this often.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

fn page(addr: u64) -> u64 {
    addr >> 12
}

impl ProcessModules {
    pub fn new(pid: u32, files: &mut ModuleFiles) -> Self {
        let mut this = Self {
            pid,
            modules: Vec::new(),
            others: Vec::new(),
            perf_map: PerfMap::for_process(pid),
            js: None,
            unwinder: UnwinderX86_64::new(),
            cache: CacheX86_64::new(),
            unplaceable: HashSet::new(),
            last_refresh: Instant::now(),
        };
        this.refresh(files);
        this
    }

    /// Re-reads /proc/PID/maps. An empty or failed read (the process is gone)
    /// keeps what was known, so late events of an exited process still unwind.
    pub fn refresh(&mut self, files: &mut ModuleFiles) {
        self.last_refresh = Instant::now();
        self.unplaceable.clear();
        let maps = match read_maps(self.pid) {
            Ok(maps) if !maps.is_empty() => maps,
            _ => return,
        };
        let mut modules: Vec<LoadedModule> = Vec::new();
        let mut others = Vec::new();
        for mapping in &maps {
            if !mapping.is_file() {
                if mapping.executable {
                    others.push(mapping.clone());
                }
                continue;
            }
            // ld.so maps a file's segments next to each other with one bias:
            // one module, with the bias of its first mapping (the others'
            // offsets can share a page with the previous segment's). The
            // same file mapped again elsewhere (V8 remaps node's builtins
            // next to its JIT code) is another module, with its own bias.
            if let Some(last) = modules.last_mut()
                && (last.dev.as_str(), last.inode) == (mapping.dev.as_str(), mapping.inode)
                && last.file.spans_svma(mapping.start.wrapping_sub(last.bias))
            {
                last.end = last.end.max(mapping.end);
                last.ranges.push((mapping.start, mapping.end));
                continue;
            }
            let Some(file) = files.get(self.pid, mapping) else {
                continue;
            };
            let Some(bias) = file.load_bias(mapping.start, mapping.offset) else {
                continue;
            };
            modules.push(LoadedModule {
                dev: mapping.dev.clone(),
                inode: mapping.inode,
                start: mapping.start,
                end: mapping.end,
                ranges: vec![(mapping.start, mapping.end)],
                bias,
                file,
            });
        }
        let mut unwinder = UnwinderX86_64::new();
        for module in &modules {
            unwinder.add_module(framehop_module(module));
        }
        if self.js.is_none() {
            self.js = loaded_images(&modules)
                .find_map(|module| JsRuntime::detect(self.pid, &module.file, module.bias));
        }
        self.modules = modules;
        self.others = others;
        self.unwinder = unwinder;
        self.cache = CacheX86_64::new();
    }

    /// The module mapped from `path`, if any.
    pub fn file_at_path(&self, path: &str) -> Option<Arc<ModuleFile>> {
        self.modules
            .iter()
            .find(|m| m.file.path == path)
            .map(|m| m.file.clone())
    }

    fn module_at(&self, addr: u64) -> Option<&LoadedModule> {
        let index = self.modules.partition_point(|m| m.start <= addr);
        let module = self.modules.get(index.checked_sub(1)?)?;
        module
            .ranges
            .iter()
            .any(|&(start, end)| start <= addr && addr < end)
            .then_some(module)
    }

    /// In no mapping known: neither a module nor other executable memory
    /// (JIT code in a known anonymous mapping needs no re-read of the maps).
    fn is_unmapped(&self, addr: u64) -> bool {
        self.module_at(addr).is_none() && self.other_at(addr).is_none()
    }

    fn other_at(&self, addr: u64) -> Option<&Mapping> {
        self.others.iter().find(|o| o.start <= addr && addr < o.end)
    }

    /// Unwinds a stack captured in the kernel: `stack` holds the memory from
    /// `regs.sp` upwards. Refreshes the module list (at most every
    /// MIN_REFRESH_INTERVAL) if the stack runs through code that was not
    /// mapped when it was last read (dlopen, exec).
    pub fn unwind(&mut self, regs: &UserRegs, stack: &[u8], files: &mut ModuleFiles) -> Unwound {
        let stack = StackCopy { regs, bytes: stack };
        let (addrs, truncated) = self.unwind_addrs(&stack);
        let unknown: Vec<u64> = addrs
            .iter()
            .map(|&(addr, _)| addr)
            .filter(|&a| self.is_unmapped(a) && !self.unplaceable.contains(&page(a)))
            .collect();
        // An unknown instruction pointer means new code for sure (an exec,
        // a dlopen): re-read now. Other unknown frames only now and then.
        let ip_unknown = unknown.first() == addrs.first().map(|(addr, _)| addr);
        if unknown.is_empty() || (!ip_unknown && self.last_refresh.elapsed() < MIN_REFRESH_INTERVAL)
        {
            return self.resolve(addrs, truncated, &stack);
        }
        self.refresh(files);
        for addr in unknown {
            if self.is_unmapped(addr) {
                self.unplaceable.insert(page(addr));
            }
        }
        let (addrs, truncated) = self.unwind_addrs(&stack);
        self.resolve(addrs, truncated, &stack)
    }

    /// The frames' lookup addresses, each with its frame pointer (rbp as the
    /// frame runs; V8's frames keep theirs there), innermost first.
    fn unwind_addrs(&mut self, stack: &StackCopy) -> (Vec<(u64, u64)>, bool) {
        let regs = stack.regs;
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let offset = usize::try_from(addr.checked_sub(regs.sp).ok_or(())?).map_err(|_| ())?;
            let bytes = stack.bytes.get(offset..offset + 8).ok_or(())?;
            Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
        };
        let mut unwind_regs = UnwindRegsX86_64::new(regs.ip, regs.sp, regs.bp);
        let mut frame = FrameAddress::from_instruction_pointer(regs.ip);
        let mut addrs = vec![(lookup_address(frame), regs.bp)];
        loop {
            let next = self.unwinder.unwind_frame(
                frame,
                &mut unwind_regs,
                &mut self.cache,
                &mut read_stack,
            );
            match next {
                Ok(Some(return_address)) => {
                    let Some(caller) = FrameAddress::from_return_address(return_address) else {
                        return (addrs, true);
                    };
                    frame = caller;
                    addrs.push((lookup_address(frame), unwind_regs.bp()));
                    if addrs.len() >= MAX_FRAMES {
                        return (addrs, true);
                    }
                }
                Ok(None) => return (addrs, false),
                Err(_) => return (addrs, true),
            }
        }
    }

    fn resolve(&mut self, addrs: Vec<(u64, u64)>, truncated: bool, stack: &StackCopy) -> Unwound {
        let mut walk = Duration::ZERO;
        let frames = addrs
            .into_iter()
            .map(|(addr, fp)| {
                let native = match self.module_at(addr) {
                    Some(m) => NativeAddr::Module {
                        file: m.file.clone(),
                        svma: addr.wrapping_sub(m.bias),
                    },
                    None => self.outside_files(addr),
                };
                let started = Instant::now();
                let js = self.javascript(&native, stack, fp);
                walk += started.elapsed();
                js.map_or(native, NativeAddr::Js)
            })
            .collect();
        if let Some(js) = self.js.as_mut() {
            js.cost.add(walk);
        }
        Unwound { frames, truncated }
    }

    /// The JavaScript frame running at `native`, if V8 runs it: JIT code,
    /// or the interpreter's builtins.
    fn javascript(
        &mut self,
        native: &NativeAddr,
        stack: &StackCopy,
        fp: u64,
    ) -> Option<Vec<Frame>> {
        let js = self.js.as_mut()?;
        let tier = match native {
            // JIT code the process's perf map names keeps that name: the
            // same function and line, with no heap read.
            NativeAddr::Jit { addr, name: None } => Tier::Compiled { pc: *addr },
            NativeAddr::Module { file, svma } if js.is_builtin(file, *svma) => Tier::Interpreted,
            _ => return None,
        };
        js.frames(stack, fp, tier)
    }

    /// An address in no mapped file: JIT code if it lies in anonymous
    /// executable memory or the perf map names it (code mapped since the
    /// maps were read), else whatever region holds it (`[vdso]`).
    fn outside_files(&mut self, addr: u64) -> NativeAddr {
        let region = self.other_at(addr);
        let anonymous = region.map(is_anonymous);
        if anonymous == Some(false) {
            return NativeAddr::Unknown {
                addr,
                region: region.and_then(|o| o.path.clone()),
            };
        }
        match self.perf_map.lookup(addr) {
            Some(name) => NativeAddr::Jit {
                addr,
                name: Some(name),
            },
            None if anonymous == Some(true) => NativeAddr::Jit { addr, name: None },
            None => NativeAddr::Unknown { addr, region: None },
        }
    }
}

/// The modules that ld.so loaded (each file's mapping from its first
/// segment), not the copies of code mapped elsewhere since (V8 remaps
/// node's builtins next to its JIT code): their data is only in the first.
fn loaded_images(modules: &[LoadedModule]) -> impl Iterator<Item = &LoadedModule> {
    modules.iter().filter(|module| {
        let first_svma = |m: &LoadedModule| m.start.wrapping_sub(m.bias);
        modules
            .iter()
            .filter(|other| Arc::ptr_eq(&other.file, &module.file))
            .all(|other| first_svma(module) <= first_svma(other))
    })
}

/// Anonymous memory, named (`[anon:…]`, by prctl) or not; not `[vdso]`.
fn is_anonymous(mapping: &Mapping) -> bool {
    mapping
        .path
        .as_deref()
        .is_none_or(|path| path.starts_with("[anon"))
}

/// The first frame is the interrupted instruction itself; the others are
/// return addresses, which point after the call.
fn lookup_address(frame: FrameAddress) -> u64 {
    frame.address_for_lookup()
}

fn framehop_module(module: &LoadedModule) -> Module<SectionBytes> {
    let file = &module.file;
    let svma = |s: &Option<super::module_file::Section>| s.as_ref().map(|s| s.svma.clone());
    let data = |s: &Option<super::module_file::Section>| s.as_ref().and_then(|s| s.data.clone());
    Module::new(
        file.path.clone(),
        module.start..module.end,
        module.bias,
        ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: svma(&file.text),
            got_svma: svma(&file.got),
            eh_frame_svma: svma(&file.eh_frame),
            eh_frame: data(&file.eh_frame),
            eh_frame_hdr_svma: svma(&file.eh_frame_hdr),
            eh_frame_hdr: data(&file.eh_frame_hdr),
            debug_frame: file.debug_frame.clone(),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(path: Option<&str>) -> Mapping {
        Mapping {
            start: 0x1000,
            end: 0x2000,
            readable: true,
            executable: true,
            offset: 0,
            dev: "00:00".to_string(),
            inode: 0,
            path: path.map(str::to_string),
        }
    }

    #[test]
    fn anonymous_memory_is_not_vdso() {
        assert!(is_anonymous(&mapping(None)));
        assert!(is_anonymous(&mapping(Some("[anon:v8 code]"))));
        assert!(!is_anonymous(&mapping(Some("[vdso]"))));
    }
}
