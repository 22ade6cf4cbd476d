//! /proc/PID/maps: which file is mapped where in a process.

use std::{fs, io};

use super::status::proc_path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub readable: bool,
    pub executable: bool,
    /// Offset in the file of the mapping's first byte.
    pub offset: u64,
    pub dev: String,
    pub inode: u64,
    /// The file, or a pseudo name such as `[vdso]`; `None` for anonymous memory.
    pub path: Option<String>,
}

impl Mapping {
    /// A mapping of a real file (not `[heap]`, `[vdso]`, anonymous memory).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.as_deref().is_some_and(|p| p.starts_with('/'))
    }
}

pub fn read_maps(pid: u32) -> io::Result<Vec<Mapping>> {
    Ok(parse_maps(&fs::read_to_string(proc_path(pid, "maps"))?))
}

pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?.as_bytes();
    let offset = fields.next()?;
    let dev = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().map(str::trim).filter(|p| !p.is_empty());
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        readable: perms.first() == Some(&b'r'),
        executable: perms.get(2) == Some(&b'x'),
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev: dev.to_string(),
        inode: inode.parse().ok()?,
        path: path.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let text = "\
55d4c2a00000-55d4c2a28000 r--p 00000000 fe:01 1312 /usr/bin/python3.11
55d4c2a28000-55d4c2d00000 r-xp 00028000 fe:01 1312 /usr/bin/python3.11
7ffd1a2e1000-7ffd1a302000 rw-p 00000000 00:00 0                          [stack]
7f0000000000-7f0000001000 rw-p 00000000 00:00 0
7ffd1a3f8000-7ffd1a3fa000 r-xp 00000000 00:00 0                          [vdso]
7f1000000000-7f1000001000 r-xp 00001000 fe:01 99 /tmp/with space (deleted)
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 6);
        assert_eq!(maps[1].start, 0x55d4c2a28000);
        assert_eq!(maps[1].offset, 0x28000);
        assert!(maps[1].executable && maps[1].is_file());
        assert_eq!(maps[2].path.as_deref(), Some("[stack]"));
        assert!(!maps[2].is_file());
        assert_eq!(maps[3].path, None);
        assert_eq!(maps[4].path.as_deref(), Some("[vdso]"));
        assert_eq!(maps[5].path.as_deref(), Some("/tmp/with space (deleted)"));
    }
}
