//! The kernel programs' stack budget, read from the object: every BPF call
//! chain (program → subprogram → `bpf_loop` callback) must fit the classic
//! 512 bytes. Kernels before 6.13 never grant a program a private stack, and
//! later ones not on every host or for every program type, so a run that
//! passes on a machine that grants one proves nothing: this check does not
//! depend on the machine.
//!
//! The verifier's own rule: each frame is its deepest access below r10,
//! rounded up to 32 bytes (16 on 6.8+ with the JIT; 32 is the stricter),
//! and the frames along a chain add up to at most 512. A function that
//! tail-calls must be reached with less than 256 bytes of frames above it.
//! Where the verifier inlines a `bpf_loop`, the caller's frame grows by
//! three 8-byte slots.

use std::collections::HashMap;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind, SymbolKind};

/// The classic BPF stack: what one call chain may use.
pub const MAX_STACK: u32 = 512;
/// Frames above a function that tail-calls: at most this much, exclusive.
pub const MAX_STACK_BEFORE_TAIL_CALL: u32 = 256;
/// What an inlined `bpf_loop` adds to its caller's frame.
const BPF_LOOP_SLOTS: u32 = 3 * 8;

const INSN: usize = 8;
const FRAME_POINTER: u8 = 10;
const BPF_PSEUDO_CALL: u8 = 1;
const BPF_PSEUDO_FUNC: u8 = 4;
const BPF_FUNC_TAIL_CALL: i32 = 12;

/// One program's deepest call chain.
#[derive(Debug)]
pub struct ProgramStack {
    pub program: String,
    /// The frames along the deepest chain, outermost first: (function,
    /// rounded frame size).
    pub chain: Vec<(String, u32)>,
    /// Their sum.
    pub depth: u32,
    /// Frames above a tail-calling function, at most, if it calls any.
    pub before_tail_call: Option<u32>,
}

/// A function of the object: where its code is and what it calls.
struct Function {
    name: String,
    /// Rounded frame size, with the `bpf_loop` slots where it needs them.
    frame: u32,
    callees: Vec<usize>,
    tail_calls: bool,
    program: bool,
}

/// The deepest call chain of every program in the ELF object `data`.
pub fn program_stacks(data: &[u8]) -> Result<Vec<ProgramStack>, String> {
    let file = object::File::parse(data).map_err(|e| format!("not an ELF object: {e}"))?;
    let functions = functions(&file)?;
    let mut stacks = Vec::new();
    for (index, function) in functions.iter().enumerate() {
        if !function.program {
            continue;
        }
        let chain = deepest_chain(&functions, index, 0);
        let names: Vec<(String, u32)> = chain
            .iter()
            .map(|&i| (functions[i].name.clone(), functions[i].frame))
            .collect();
        stacks.push(ProgramStack {
            program: function.name.clone(),
            depth: names.iter().map(|(_, frame)| frame).sum(),
            chain: names,
            before_tail_call: before_tail_call(&functions, index, 0),
        });
    }
    Ok(stacks)
}

/// The chain of function indices below `index` with the largest sum of
/// frames (BPF has no recursion: the graph is a DAG). `depth` guards
/// against a malformed object.
fn deepest_chain(functions: &[Function], index: usize, depth: usize) -> Vec<usize> {
    let mut best = Vec::new();
    let mut best_sum = 0;
    if depth < 32 {
        for &callee in &functions[index].callees {
            let chain = deepest_chain(functions, callee, depth + 1);
            let sum: u32 = chain.iter().map(|&i| functions[i].frame).sum();
            if sum > best_sum || best.is_empty() {
                best_sum = sum;
                best = chain;
            }
        }
    }
    best.insert(0, index);
    best
}

/// The most frame bytes above any tail-calling function reached from
/// `index`, with `above` bytes already above `index`.
fn before_tail_call(functions: &[Function], index: usize, above: u32) -> Option<u32> {
    let function = &functions[index];
    let here = function.tail_calls.then_some(above);
    let below = function
        .callees
        .iter()
        .filter_map(|&callee| before_tail_call(functions, callee, above + function.frame))
        .max();
    here.max(below)
}

/// Every function symbol of the object's code sections, with its frame and
/// callees resolved.
fn functions(file: &object::File) -> Result<Vec<Function>, String> {
    struct Raw<'a> {
        name: String,
        section: object::SectionIndex,
        start: u64,
        code: &'a [u8],
        program: bool,
    }
    let mut raw = Vec::new();
    for symbol in file.symbols() {
        if symbol.kind() != SymbolKind::Text || symbol.size() == 0 {
            continue;
        }
        let Some(section_index) = symbol.section_index() else {
            continue;
        };
        let section = file
            .section_by_index(section_index)
            .map_err(|e| e.to_string())?;
        let data = section.data().map_err(|e| e.to_string())?;
        let start = symbol.address() - section.address();
        let code = data
            .get(start as usize..(start + symbol.size()) as usize)
            .ok_or_else(|| format!("{} lies outside its section", symbol.name().unwrap_or("?")))?;
        raw.push(Raw {
            name: symbol.name().unwrap_or("?").to_string(),
            section: section_index,
            start,
            code,
            program: section.name().is_ok_and(|name| name != ".text"),
        });
    }
    let by_address: HashMap<(object::SectionIndex, u64), usize> = raw
        .iter()
        .enumerate()
        .map(|(i, f)| ((f.section, f.start), i))
        .collect();
    let mut functions = Vec::new();
    for f in &raw {
        let relocations = relocations(file, f.section)?;
        let scan = scan(f.code, f.start, &relocations);
        let mut callees = Vec::new();
        for target in scan.calls.iter().chain(&scan.callbacks) {
            let &callee = by_address
                .get(&(target.0.unwrap_or(f.section), target.1))
                .ok_or_else(|| format!("{} calls an unknown function", f.name))?;
            callees.push(callee);
        }
        let slots = if scan.callbacks.is_empty() {
            0
        } else {
            BPF_LOOP_SLOTS
        };
        functions.push(Function {
            name: demangled(&f.name),
            frame: (scan.depth + slots).max(1).div_ceil(32) * 32,
            callees,
            tail_calls: scan.tail_calls,
            program: f.program,
        });
    }
    Ok(functions)
}

/// A call's or a callback's target: its section (None: the caller's) and
/// offset there.
type Target = (Option<object::SectionIndex>, u64);

/// What a relocation at an instruction's offset points at: a function
/// symbol's address, or a section symbol (the instruction's immediate then
/// says where in it).
#[derive(Clone, Copy)]
enum Relocated {
    Function(object::SectionIndex, u64),
    Section(object::SectionIndex),
}

/// The relocations of code section `section` that point into code.
fn relocations(
    file: &object::File,
    section: object::SectionIndex,
) -> Result<HashMap<u64, Relocated>, String> {
    let section = file.section_by_index(section).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for (offset, relocation) in section.relocations() {
        let RelocationTarget::Symbol(index) = relocation.target() else {
            continue;
        };
        let symbol = file.symbol_by_index(index).map_err(|e| e.to_string())?;
        let Some(target_section) = symbol.section_index() else {
            continue;
        };
        let is_code = file
            .section_by_index(target_section)
            .is_ok_and(|s| s.kind() == SectionKind::Text);
        if !is_code {
            continue;
        }
        let relocated = match symbol.kind() {
            SymbolKind::Section => Relocated::Section(target_section),
            _ => Relocated::Function(target_section, symbol.address()),
        };
        out.insert(offset, relocated);
    }
    Ok(out)
}

/// What one function's instructions show.
#[derive(Default)]
struct Scan {
    /// The deepest byte below the frame pointer it touches or points at.
    depth: u32,
    calls: Vec<Target>,
    /// Functions it passes as callbacks (to `bpf_loop`).
    callbacks: Vec<Target>,
    tail_calls: bool,
}

/// Reads the instructions of a function at offset `start` of its section.
fn scan(code: &[u8], start: u64, relocations: &HashMap<u64, Relocated>) -> Scan {
    let mut scan = Scan::default();
    // Registers known to hold r10 + offset (LLVM's `rX = r10; rX += -N`).
    let mut frame_offset: [Option<i64>; 11] = [None; 11];
    frame_offset[usize::from(FRAME_POINTER)] = Some(0);
    let deepest = |offset: i64, scan: &mut Scan| {
        if offset < 0 {
            scan.depth = scan.depth.max(offset.unsigned_abs() as u32);
        }
    };
    let mut pc = 0;
    while pc + INSN <= code.len() {
        let insn = &code[pc..pc + INSN];
        let opcode = insn[0];
        let dst = (insn[1] & 0x0f) as usize;
        let src = insn[1] >> 4;
        let off = i64::from(i16::from_le_bytes([insn[2], insn[3]]));
        let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
        let at = start + pc as u64;
        let class = opcode & 0x07;
        let memory = opcode & 0xe0 == 0x60;
        match class {
            // LDX: a load from [src + off] into dst.
            0x01 if memory => {
                if let Some(base) = frame_offset.get(src as usize).copied().flatten() {
                    deepest(base + off, &mut scan);
                }
                frame_offset[dst.min(10)] = None;
            }
            // ST, STX: a store to [dst + off].
            0x02 | 0x03 if memory => {
                if let Some(base) = frame_offset.get(dst).copied().flatten() {
                    deepest(base + off, &mut scan);
                }
            }
            // ALU64: follow copies of r10 and the offsets added to them.
            0x07 if dst < 10 => {
                frame_offset[dst] = match opcode {
                    0xbf => frame_offset.get(src as usize).copied().flatten(),
                    0x07 => frame_offset[dst].map(|base| base + i64::from(imm)),
                    _ => None,
                };
                if let Some(offset) = frame_offset[dst] {
                    deepest(offset, &mut scan);
                }
            }
            // JMP: calls.
            0x05 if opcode == 0x85 => {
                if src == BPF_PSEUDO_CALL {
                    scan.calls.push(match relocations.get(&at) {
                        Some(&Relocated::Function(section, address)) => (Some(section), address),
                        Some(&Relocated::Section(section)) => {
                            (Some(section), (i64::from(imm) + 1) as u64 * INSN as u64)
                        }
                        None => (
                            None,
                            (at as i64 + (i64::from(imm) + 1) * INSN as i64) as u64,
                        ),
                    });
                } else if imm == BPF_FUNC_TAIL_CALL {
                    scan.tail_calls = true;
                }
                // r0-r5 do not survive a call.
                frame_offset[..6].fill(None);
            }
            // LD: a 64-bit immediate, 16 bytes; a function's address is a
            // callback.
            0x00 if opcode == 0x18 => {
                let callback = match relocations.get(&at) {
                    Some(&Relocated::Function(section, address)) => Some((Some(section), address)),
                    Some(&Relocated::Section(section)) => Some((Some(section), imm as u64)),
                    None if src == BPF_PSEUDO_FUNC => Some((
                        None,
                        (at as i64 + (i64::from(imm) + 1) * INSN as i64) as u64,
                    )),
                    None => None,
                };
                scan.callbacks.extend(callback);
                frame_offset[dst.min(10)] = None;
                pc += INSN;
            }
            // ALU (32-bit) and other loads overwrite dst.
            0x04 | 0x00 | 0x01 => frame_offset[dst.min(10)] = None,
            _ => {}
        }
        pc += INSN;
    }
    scan
}

/// A readable name for a (v0-mangled) Rust symbol, without its hash.
fn demangled(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_chain_fits_the_classic_bpf_stack() {
        for (name, object) in [
            ("probes", crate::probes::OBJECT),
            ("probes-bounded", crate::probes::OBJECT_BOUNDED),
        ] {
            check(name, object);
        }
    }

    fn check(name: &str, object: &[u8]) {
        let stacks = program_stacks(object).expect("the embedded object parses");
        assert!(stacks.len() >= 10, "programs found: {stacks:?}");
        let mut report = format!("deepest call chain per program of {name}, bytes:\n");
        for stack in &stacks {
            report += &format!(
                "{:>4} {:<20} {:?}\n",
                stack.depth, stack.program, stack.chain
            );
        }
        eprintln!("{report}");
        for stack in &stacks {
            assert!(
                stack.depth <= MAX_STACK,
                "{} needs {} bytes:\n{report}",
                stack.program,
                stack.depth
            );
            if let Some(above) = stack.before_tail_call {
                assert!(
                    above < MAX_STACK_BEFORE_TAIL_CALL,
                    "{} tail-calls below {above} bytes",
                    stack.program
                );
            }
        }
    }
}
