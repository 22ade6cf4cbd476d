//! What a file descriptor refers to, in words a person recognises:
//! `file:/path`, `tcp:127.0.0.1:5000->127.0.0.1:80`, `unix:/path`, `pipe`, ...

use std::{collections::HashMap, fs};

use super::{
    net::{Socket, read_sockets},
    status::proc_path,
};

/// Resolves fds of traced processes, caching the socket tables (re-read
/// when an unknown socket shows up).
#[derive(Default)]
pub struct FdResolver {
    sockets: HashMap<u32, HashMap<u64, Socket>>,
}

impl FdResolver {
    /// Describes fd `fd` of process `pid` now; `None` if it is closed or the
    /// process is gone.
    pub fn describe(&mut self, pid: u32, fd: i32) -> Option<String> {
        if fd < 0 {
            return None;
        }
        let link = fs::read_link(proc_path(pid, &format!("fd/{fd}"))).ok()?;
        let link = link.to_string_lossy();
        Some(match socket_inode(&link) {
            Some(inode) => self.describe_socket(pid, inode),
            None => describe_link(&link),
        })
    }

    fn describe_socket(&mut self, pid: u32, inode: u64) -> String {
        let known = self
            .sockets
            .get(&pid)
            .is_some_and(|table| table.contains_key(&inode));
        if !known {
            self.sockets.insert(pid, read_sockets(pid));
        }
        match self.sockets.get(&pid).and_then(|table| table.get(&inode)) {
            Some(socket) => socket.describe(),
            None => "socket".to_string(),
        }
    }
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Describes a non-socket fd from its /proc/PID/fd link.
pub fn describe_link(link: &str) -> String {
    if link.starts_with('/') {
        return format!("file:{link}");
    }
    if link.starts_with("pipe:") {
        return "pipe".to_string();
    }
    if let Some(kind) = link
        .strip_prefix("anon_inode:")
        .map(|k| k.trim_start_matches('[').trim_end_matches(']'))
    {
        return kind.to_string();
    }
    link.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn describes_links() {
        assert_eq!(describe_link("/etc/hosts"), "file:/etc/hosts");
        assert_eq!(describe_link("pipe:[1234]"), "pipe");
        assert_eq!(describe_link("anon_inode:[eventfd]"), "eventfd");
        assert_eq!(describe_link("anon_inode:[eventpoll]"), "eventpoll");
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn describes_live_fds() {
        let me = std::process::id();
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut resolver = FdResolver::default();
        let path = file.path().canonicalize().unwrap();
        assert_eq!(
            resolver.describe(me, file.as_file().as_raw_fd()),
            Some(format!("file:{}", path.display()))
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let local = client.local_addr().unwrap().port();
        assert_eq!(
            resolver.describe(me, listener.as_raw_fd()),
            Some(format!("tcp:127.0.0.1:{port} (listening)"))
        );
        assert_eq!(
            resolver.describe(me, client.as_raw_fd()),
            Some(format!("tcp:127.0.0.1:{local}->127.0.0.1:{port}"))
        );
        assert_eq!(resolver.describe(me, 987_654), None);
    }
}
