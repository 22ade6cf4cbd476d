//! Kernel struct member offsets from the kernel's BTF (/sys/kernel/btf/vmlinux).
//! The probes are plain BPF without CO-RE relocations, so the few kernel
//! fields they read (e.g. `task_struct.thread.fsbase`) are located here and
//! handed over as load-time settings.

use std::collections::HashMap;

const BTF_MAGIC: u16 = 0xeb9f;

// BTF kinds (include/uapi/linux/btf.h).
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF: {0}")]
    Read(#[from] std::io::Error),
    #[error("malformed kernel BTF: {0}")]
    Malformed(&'static str),
    #[error("kernel BTF has no {0}")]
    Missing(String),
}

#[derive(Debug, Clone)]
struct Member {
    name: u32,
    type_id: u32,
    /// Offset in bits.
    bit_offset: u32,
}

#[derive(Debug, Clone)]
enum Type {
    /// Struct or union.
    Composite {
        name: u32,
        members: Vec<Member>,
    },
    /// Typedef, const, volatile: refers to another type.
    Alias(u32),
    Other,
}

pub struct KernelBtf {
    strings: Vec<u8>,
    /// Index = type id (0 is void).
    types: Vec<Type>,
    by_name: HashMap<String, u32>,
    /// The names (string offsets) of every enumerator of every enum.
    enumerators: Vec<u32>,
}

fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

impl KernelBtf {
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::parse(&std::fs::read("/sys/kernel/btf/vmlinux")?)
    }

    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        let malformed = BtfError::Malformed;
        let magic = u16::from_le_bytes(
            data.get(0..2)
                .and_then(|b| b.try_into().ok())
                .ok_or(malformed("short header"))?,
        );
        if magic != BTF_MAGIC {
            return Err(malformed("bad magic (not little-endian BTF)"));
        }
        let header = |i: usize| u32_at(data, 4 + 4 * i).ok_or(malformed("short header"));
        let (header_len, type_off, type_len, str_off, str_len) =
            (header(0)?, header(1)?, header(2)?, header(3)?, header(4)?);
        let section = |off: u32, len: u32| {
            let start = header_len as usize + off as usize;
            data.get(start..start + len as usize)
                .ok_or(malformed("section out of bounds"))
        };
        let type_data = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?.to_vec();
        let mut this = Self {
            strings,
            types: vec![Type::Other],
            by_name: HashMap::new(),
            enumerators: Vec::new(),
        };
        let mut at = 0;
        while at < type_data.len() {
            let word = |i: usize| u32_at(type_data, at + 4 * i).ok_or(malformed("truncated type"));
            let (name, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let kind_flag = info >> 31 == 1;
            at += 12;
            let ty = match kind {
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let m = |j: usize| {
                            u32_at(type_data, at + 12 * i + 4 * j)
                                .ok_or(malformed("truncated member"))
                        };
                        let offset = m(2)?;
                        members.push(Member {
                            name: m(0)?,
                            type_id: m(1)?,
                            // With kind_flag, the low 24 bits are the offset.
                            bit_offset: if kind_flag {
                                offset & 0xff_ffff
                            } else {
                                offset
                            },
                        });
                    }
                    at += 12 * vlen;
                    Type::Composite { name, members }
                }
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST => Type::Alias(size_or_type),
                KIND_ENUM => {
                    for i in 0..vlen {
                        let name = u32_at(type_data, at + 8 * i)
                            .ok_or(malformed("truncated enumerator"))?;
                        this.enumerators.push(name);
                    }
                    at += 8 * vlen;
                    Type::Other
                }
                _ => {
                    at += match kind {
                        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                        KIND_ARRAY => 12,
                        KIND_FUNC_PROTO => 8 * vlen,
                        KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                        _ => 0,
                    };
                    Type::Other
                }
            };
            if let Type::Composite { name, .. } = &ty
                && *name != 0
            {
                let id = this.types.len() as u32;
                let name = this.string(*name).to_string();
                this.by_name.entry(name).or_insert(id);
            }
            this.types.push(ty);
        }
        Ok(this)
    }

    fn string(&self, offset: u32) -> &str {
        let start = offset as usize;
        let bytes = self.strings.get(start..).unwrap_or_default();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).unwrap_or_default()
    }

    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..16 {
            match self.types.get(id as usize)? {
                Type::Alias(target) => id = *target,
                other => return Some(other),
            }
        }
        None
    }

    /// Finds `name` among the members of composite type `id`, looking
    /// through anonymous structs and unions; returns (byte offset, type id).
    fn member(&self, id: u32, name: &str) -> Option<(u32, u32)> {
        let Type::Composite { members, .. } = self.resolve(id)? else {
            return None;
        };
        for member in members {
            if self.string(member.name) == name {
                return Some((member.bit_offset / 8, member.type_id));
            }
            if member.name == 0
                && let Some((offset, ty)) = self.member(member.type_id, name)
            {
                return Some((member.bit_offset / 8 + offset, ty));
            }
        }
        None
    }

    /// Whether some enum has an enumerator `name` (e.g. `BPF_FUNC_loop` of
    /// `enum bpf_func_id`: the helpers this kernel has).
    pub fn has_enumerator(&self, name: &str) -> bool {
        self.enumerators
            .iter()
            .any(|&offset| self.string(offset) == name)
    }

    /// Byte offset of a member path in a struct, e.g.
    /// `offset_of("task_struct", &["thread", "fsbase"])`.
    pub fn offset_of(&self, structure: &str, path: &[&str]) -> Result<u32, BtfError> {
        let missing = || BtfError::Missing(format!("{structure}.{}", path.join(".")));
        let mut id = *self.by_name.get(structure).ok_or_else(missing)?;
        let mut total = 0;
        for field in path {
            let (offset, ty) = self.member(id, field).ok_or_else(missing)?;
            total += offset;
            id = ty;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_task_struct_fields() {
        let btf = KernelBtf::from_sys_fs().expect("this kernel has BTF");
        let pid = btf.offset_of("task_struct", &["pid"]).unwrap();
        let tgid = btf.offset_of("task_struct", &["tgid"]).unwrap();
        // `pid_t pid; pid_t tgid;` are neighbours in every kernel.
        assert_eq!(tgid, pid + 4);
        let thread = btf.offset_of("task_struct", &["thread"]).unwrap();
        let fsbase = btf.offset_of("task_struct", &["thread", "fsbase"]).unwrap();
        assert!(
            fsbase > thread && fsbase < thread + 256,
            "{thread} {fsbase}"
        );
        assert!(matches!(
            btf.offset_of("task_struct", &["no_such_field"]),
            Err(BtfError::Missing(_))
        ));
    }

    #[test]
    fn finds_the_helpers_of_this_kernel() {
        let btf = KernelBtf::from_sys_fs().expect("this kernel has BTF");
        // bpf_probe_read_user: 5.5; bpf_loop: 5.17.
        assert!(btf.has_enumerator("BPF_FUNC_probe_read_user"));
        assert!(btf.has_enumerator("BPF_FUNC_loop"));
        assert!(!btf.has_enumerator("BPF_FUNC_no_such_helper"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(KernelBtf::parse(&[0; 3]).is_err());
        assert!(KernelBtf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_err());
    }
}
