//! Reading another process's memory through /proc/PID/mem, and picking
//! little-endian fields out of the bytes read.

use std::{fs::File, io, os::unix::fs::FileExt};

/// The memory of one process. The file stays bound to the address space it
/// was opened on: after the process exits or execs, reads fail instead of
/// reading another program.
#[derive(Debug)]
pub struct ProcessMemory {
    file: File,
}

impl ProcessMemory {
    pub fn open(pid: u32) -> io::Result<Self> {
        File::open(format!("/proc/{pid}/mem")).map(|file| Self { file })
    }

    pub fn read(&self, address: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, address)
    }

    pub fn read_vec(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0; len];
        self.read(address, &mut buf).ok()?;
        Some(buf)
    }

    pub fn read_array<const N: usize>(&self, address: u64) -> Option<[u8; N]> {
        let mut buf = [0; N];
        self.read(address, &mut buf).ok()?;
        Some(buf)
    }

    pub fn read_u64(&self, address: u64) -> Option<u64> {
        self.read_array(address).map(u64::from_le_bytes)
    }
}

pub fn u64_at(bytes: &[u8], offset: u32) -> Option<u64> {
    field(bytes, offset).map(u64::from_le_bytes)
}

pub fn i64_at(bytes: &[u8], offset: u32) -> Option<i64> {
    field(bytes, offset).map(i64::from_le_bytes)
}

pub fn i32_at(bytes: &[u8], offset: u32) -> Option<i32> {
    field(bytes, offset).map(i32::from_le_bytes)
}

fn field<const N: usize>(bytes: &[u8], offset: u32) -> Option<[u8; N]> {
    let start = usize::try_from(offset).ok()?;
    bytes.get(start..)?.first_chunk().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_little_endian_and_bounded() {
        let bytes = [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(i32_at(&bytes, 0), Some(1));
        assert_eq!(i32_at(&bytes, 4), Some(-2));
        assert_eq!(i64_at(&bytes, 4), Some(-2));
        assert_eq!(u64_at(&bytes, 0), Some(0xffff_fffe_0000_0001));
        assert_eq!(u64_at(&bytes, 5), None);
        assert_eq!(i32_at(&bytes, u32::MAX), None);
    }

    #[test]
    fn reads_own_memory() {
        let value: u64 = 0x0123_4567_89ab_cdef;
        let memory = ProcessMemory::open(std::process::id()).expect("open own memory");
        let address = std::hint::black_box(&value) as *const u64 as u64;
        assert_eq!(memory.read_u64(address), Some(value));
        assert_eq!(memory.read_u64(0), None);
    }
}
