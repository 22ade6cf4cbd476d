//! Baseline (Sparkplug) code: which bytecode a pc in it runs. Sparkplug
//! compiles each bytecode in order, and its Code object's bytecode offset
//! table holds the length of the machine code of each, as unsigned varints
//! (7 bits a byte, least significant first): the prologue's first, then one
//! per bytecode. The bytecodes' lengths come from the BytecodeArray itself
//! and V8's size table (`Bytecodes::kBytecodeSizes`). Pure code on bytes
//! already read.

use super::positions::read_varint;

/// Prefix bytecodes that scale the next one's operands (V8 numbers them
/// first): Wide and DebugBreakWide double them, ExtraWide and
/// DebugBreakExtraWide quadruple them.
const WIDE: [u8; 2] = [0, 2];
const EXTRA_WIDE: [u8; 2] = [1, 3];

/// V8's `kBytecodeSizes[3][count]`: the size of each bytecode with its
/// operands, at operand scale 1, 2 and 4.
pub struct BytecodeSizes(Vec<u8>);

impl BytecodeSizes {
    /// The table as the binary holds it; None if it is not three rows of
    /// plausible sizes.
    pub fn new(table: Vec<u8>) -> Option<Self> {
        let plausible = !table.is_empty()
            && table.len().is_multiple_of(3)
            && table.iter().all(|&size| (1..32).contains(&size));
        plausible.then_some(Self(table))
    }

    /// The length of the bytecode at the start of `code`, its prefix
    /// included.
    fn length(&self, code: &[u8]) -> Option<usize> {
        let count = self.0.len() / 3;
        let (&first, rest) = code.split_first()?;
        let (row, prefix, opcode) = if WIDE.contains(&first) {
            (1, 1, *rest.first()?)
        } else if EXTRA_WIDE.contains(&first) {
            (2, 1, *rest.first()?)
        } else {
            (0, 0, first)
        };
        let opcode = usize::from(opcode);
        if opcode >= count {
            return None;
        }
        let size = self.0[row * count + opcode];
        Some(prefix + usize::from(size))
    }
}

/// The offset of the bytecode whose machine code holds `pc_offset` (an
/// offset in the instructions), given the code's bytecode offset `table`
/// and the function's `bytecode`; None in the prologue (no bytecode yet),
/// or if the table or the bytecode ends first.
pub fn bytecode_offset(
    table: &[u8],
    bytecode: &[u8],
    sizes: &BytecodeSizes,
    pc_offset: u64,
) -> Option<u32> {
    let mut lengths = table.iter().copied();
    let mut end = read_varint(&mut lengths)?;
    if pc_offset < end {
        return None;
    }
    let mut offset = 0;
    loop {
        let length = sizes.length(bytecode.get(offset..)?)?;
        end = end.checked_add(read_varint(&mut lengths)?)?;
        if pc_offset < end {
            return u32::try_from(offset).ok();
        }
        offset += length;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four opcodes: the prefixes Wide and ExtraWide (0, 1), and two
    /// bytecodes: 4 is 3 bytes long (6 wide, 10 extra wide), 5 is 1.
    fn sizes() -> BytecodeSizes {
        let row = |a, b| vec![1, 1, 1, 1, a, b];
        BytecodeSizes::new([row(3, 1), row(6, 1), row(10, 1)].concat()).expect("sizes")
    }

    #[test]
    fn bytecodes_are_walked_with_their_prefixes() {
        let sizes = sizes();
        assert_eq!(sizes.length(&[4, 9, 9]), Some(3));
        assert_eq!(sizes.length(&[0, 4]), Some(7));
        assert_eq!(sizes.length(&[1, 4]), Some(11));
        assert_eq!(sizes.length(&[5]), Some(1));
        assert_eq!(sizes.length(&[0]), None);
        assert_eq!(sizes.length(&[9]), None);
    }

    #[test]
    fn pc_offsets_map_to_the_bytecode_compiled_there() {
        // A 10-byte prologue, then bytecodes at 0 (3 bytes: 20 bytes of
        // code), 3 (wide, 7 bytes: 200 bytes, a two-byte varint) and 10.
        let bytecode = [4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 5];
        let table = [10, 20, 0xc8, 0x01, 5];
        let at = |pc| bytecode_offset(&table, &bytecode, &sizes(), pc);
        assert_eq!(at(0), None);
        assert_eq!(at(9), None);
        assert_eq!(at(10), Some(0));
        assert_eq!(at(29), Some(0));
        assert_eq!(at(30), Some(3));
        assert_eq!(at(229), Some(3));
        assert_eq!(at(230), Some(10));
        assert_eq!(at(234), Some(10));
        assert_eq!(at(235), None);
    }

    /// What Node 20's Sparkplug wrote for a function (`checkQuota`, run
    /// with --always-sparkplug), read from the live process: its bytecode
    /// (five bytecodes, at offsets 0, 2, 3, 8 and 9: the call at 3) and
    /// its bytecode offset table; the sizes of these opcodes are node 20's
    /// (kBytecodeSizes: 23 is 2, 3 or 5 bytes; 99 is 5, 9 or 17; 195, 196
    /// and 169 are 1).
    #[test]
    fn a_baseline_table_node_wrote() {
        let count = 198;
        let mut table = vec![1; 3 * count];
        for (opcode, sizes) in [(23, [2, 3, 5]), (99, [5, 9, 17])] {
            for (row, size) in sizes.into_iter().enumerate() {
                table[row * count + opcode] = size;
            }
        }
        let sizes = BytecodeSizes::new(table).expect("sizes");
        let bytecode = [23, 5, 195, 99, 249, 3, 4, 0, 196, 169];
        let offsets = [22, 8, 4, 27, 4, 17];
        let at = |pc| bytecode_offset(&offsets, &bytecode, &sizes, pc);
        assert_eq!(at(21), None);
        assert_eq!(at(22), Some(0));
        assert_eq!(at(30), Some(2));
        // The call's return address (61) less one, as the tracer saw it.
        assert_eq!(at(60), Some(3));
        assert_eq!(at(61), Some(8));
        assert_eq!(at(81), Some(9));
        assert_eq!(at(82), None);
    }

    #[test]
    fn implausible_size_tables_are_refused() {
        assert!(BytecodeSizes::new(vec![]).is_none());
        assert!(BytecodeSizes::new(vec![1, 2]).is_none());
        assert!(BytecodeSizes::new(vec![1, 0, 3]).is_none());
    }
}
