//! Reading V8 heap objects from the target's memory, each checked by the
//! instance type its map states before a field of it is trusted: an object
//! the GC has moved or freed since the event reads as no object, not as
//! another one's fields.

use super::constants::{Layout, StringLayout};
use crate::procfs::memory::ProcessMemory;

/// Pointers to heap objects carry tag 1 in their low bits; small integers
/// (Smis) have bit 0 clear.
const HEAP_OBJECT_TAG: u64 = 1;
const TAG_MASK: u64 = 3;

/// Longest function or script name read.
const MAX_NAME_UNITS: u64 = 1024;
/// Longest source read to count its lines (a script without line ends).
pub const MAX_SOURCE_UNITS: u64 = 8 << 20;
/// Cons strings nest; their depth is bounded against cycles.
const MAX_STRING_DEPTH: u32 = 32;

pub struct Heap<'a> {
    pub memory: &'a ProcessMemory,
    pub layout: &'a Layout,
}

/// The value of a Smi (a tagged small integer: 32 bits in the upper half).
pub fn smi(value: u64) -> Option<i64> {
    (value & 1 == 0).then_some((value as i64) >> 32)
}

/// The address of a tagged heap object pointer.
pub fn untag(tagged: u64) -> Option<u64> {
    (tagged & TAG_MASK == HEAP_OBJECT_TAG && tagged > 0x1000).then_some(tagged - HEAP_OBJECT_TAG)
}

impl Heap<'_> {
    pub fn read_u64(&self, address: u64) -> Option<u64> {
        self.memory.read_u64(address)
    }

    /// A field of the object at `address`.
    pub fn field(&self, address: u64, offset: u64) -> Option<u64> {
        self.read_u64(address.checked_add(offset)?)
    }

    /// Where the object `tagged` points to is now, if the scavenger has
    /// moved it: until the young space it was in is reused (at the next
    /// scavenge), its map word holds its new address, untagged (a word
    /// with the Smi tag, which no map pointer has).
    pub fn forwarded(&self, tagged: u64) -> Option<u64> {
        let word = self.field(untag(tagged)?, self.layout.map)?;
        let moved_to = word.checked_add(HEAP_OBJECT_TAG)?;
        (word & TAG_MASK == 0 && untag(moved_to).is_some()).then_some(moved_to)
    }

    /// The instance type of the object `tagged` points to.
    pub fn instance_type(&self, tagged: u64) -> Option<u16> {
        let address = untag(tagged)?;
        let map = untag(self.field(address, self.layout.map)?)?;
        let bytes: [u8; 2] = self
            .memory
            .read_array(map.checked_add(self.layout.map_instance_type)?)?;
        Some(u16::from_le_bytes(bytes))
    }

    /// The address of the object `tagged` points to, if its type passes.
    pub fn typed(&self, tagged: u64, is: impl Fn(u16) -> bool) -> Option<u64> {
        let instance_type = self.instance_type(tagged)?;
        is(instance_type).then(|| tagged - HEAP_OBJECT_TAG)
    }

    /// The Smis of a FixedArray, at most `max` of them.
    pub fn smi_array(&self, tagged: u64, max: u64) -> Option<Vec<i64>> {
        let address = self.typed(tagged, |t| t == self.layout.types.fixed_array)?;
        let length = smi(self.field(address, self.layout.array_length)?)?;
        let length = u64::try_from(length).ok().filter(|&l| l <= max)?;
        let bytes = self.memory.read_vec(
            address + self.layout.array_data,
            usize::try_from(length * 8).ok()?,
        )?;
        bytes
            .chunks_exact(8)
            .map(|c| smi(u64::from_le_bytes(c.try_into().ok()?)))
            .collect()
    }

    /// The bytes of a ByteArray (or TrustedByteArray), at most `max`.
    pub fn byte_array(&self, tagged: u64, max: u64) -> Option<Vec<u8>> {
        let types = &self.layout.types.byte_arrays;
        let address = self.typed(tagged, |t| types.contains(&t))?;
        let length = smi(self.field(address, self.layout.array_length)?)?;
        let length = u64::try_from(length).ok().filter(|&l| l <= max)?;
        self.memory.read_vec(
            address + self.layout.array_data,
            usize::try_from(length).ok()?,
        )
    }

    /// A short string (a name).
    pub fn name(&self, tagged: u64) -> Option<String> {
        let units = self.string_units(tagged, MAX_NAME_UNITS)?;
        Some(String::from_utf16_lossy(&units))
    }

    /// Whether `tagged` points to a string.
    pub fn is_string(&self, tagged: u64) -> bool {
        self.instance_type(tagged)
            .is_some_and(|t| t < self.layout.strings.first_nonstring_type)
    }

    /// The UTF-16 code units of a string of at most `max` units.
    pub fn string_units(&self, tagged: u64, max: u64) -> Option<Vec<u16>> {
        let mut out = Vec::new();
        self.append_string(tagged, 0, max, &mut out, 0)?;
        Some(out)
    }

    /// Appends units `start..` of the string (as many as its length says),
    /// following cons, thin and sliced strings to their sequential parts.
    /// External strings (data outside the heap) are not read.
    fn append_string(
        &self,
        tagged: u64,
        start: u64,
        max: u64,
        out: &mut Vec<u16>,
        depth: u32,
    ) -> Option<()> {
        let strings: &StringLayout = &self.layout.strings;
        if depth > MAX_STRING_DEPTH {
            return None;
        }
        let instance_type = self.instance_type(tagged)?;
        if instance_type >= strings.first_nonstring_type {
            return None;
        }
        let address = tagged - HEAP_OBJECT_TAG;
        let length_bytes: [u8; 4] = self.memory.read_array(address + strings.length)?;
        let length = u64::from(u32::from_le_bytes(length_bytes));
        if length > max {
            return None;
        }
        let one_byte = instance_type & strings.encoding_mask == strings.one_byte_tag;
        match instance_type & strings.representation_mask {
            r if r == strings.seq_tag => {
                let count = length.checked_sub(start)?;
                let width = if one_byte { 1 } else { 2 };
                let bytes = self.memory.read_vec(
                    address + strings.seq_chars + start * width,
                    usize::try_from(count * width).ok()?,
                )?;
                if one_byte {
                    out.extend(bytes.iter().map(|&b| u16::from(b)));
                } else {
                    out.extend(
                        bytes
                            .chunks_exact(2)
                            .map(|c| u16::from_le_bytes([c[0], c[1]])),
                    );
                }
                Some(())
            }
            r if r == strings.cons_tag && start == 0 => {
                let first = self.field(address, strings.cons_first)?;
                let second = self.field(address, strings.cons_second)?;
                self.append_string(first, 0, max, out, depth + 1)?;
                self.append_string(second, 0, max, out, depth + 1)
            }
            r if r == strings.thin_tag => {
                let actual = self.field(address, strings.thin_actual)?;
                self.append_string(actual, start, max, out, depth + 1)
            }
            r if r == strings.sliced_tag && start == 0 => {
                let parent = self.field(address, strings.sliced_parent)?;
                let offset =
                    u64::try_from(smi(self.field(address, strings.sliced_offset)?)?).ok()?;
                let before = out.len();
                self.append_string(parent, offset, MAX_SOURCE_UNITS, out, depth + 1)?;
                out.truncate(before + usize::try_from(length).ok()?);
                Some(())
            }
            _ => None,
        }
    }
}
