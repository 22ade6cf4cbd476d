//! Sockets of a process's network namespace, from /proc/PID/net/*, keyed by
//! inode (what /proc/PID/fd/N links to: `socket:[INODE]`).

use std::{
    collections::HashMap,
    fs,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
};

use super::status::proc_path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    Inet {
        proto: &'static str,
        local: SocketAddr,
        remote: SocketAddr,
        listening: bool,
    },
    Unix {
        path: Option<String>,
    },
}

impl Socket {
    /// `tcp:127.0.0.1:53412->127.0.0.1:8081`, `tcp:0.0.0.0:8080 (listening)`,
    /// `udp:0.0.0.0:5353`, `unix:/run/app.sock`, `unix`.
    pub fn describe(&self) -> String {
        match self {
            Socket::Inet {
                proto,
                local,
                listening: true,
                ..
            } => format!("{proto}:{local} (listening)"),
            Socket::Inet {
                proto,
                local,
                remote,
                ..
            } if remote.port() == 0 => format!("{proto}:{local}"),
            Socket::Inet {
                proto,
                local,
                remote,
                ..
            } => format!("{proto}:{local}->{remote}"),
            Socket::Unix { path: Some(path) } => format!("unix:{path}"),
            Socket::Unix { path: None } => "unix".to_string(),
        }
    }
}

/// TCP state 0A is LISTEN in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";

/// All sockets of the namespace `pid` lives in.
pub fn read_sockets(pid: u32) -> HashMap<u64, Socket> {
    let mut sockets = HashMap::new();
    for (file, proto) in [
        ("net/tcp", "tcp"),
        ("net/tcp6", "tcp"),
        ("net/udp", "udp"),
        ("net/udp6", "udp"),
    ] {
        if let Ok(text) = fs::read_to_string(proc_path(pid, file)) {
            sockets.extend(parse_inet(&text, proto));
        }
    }
    if let Ok(text) = fs::read_to_string(proc_path(pid, "net/unix")) {
        sockets.extend(parse_unix(&text));
    }
    sockets
}

pub fn parse_inet(text: &str, proto: &'static str) -> Vec<(u64, Socket)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = parse_addr(fields.get(1)?)?;
            let remote = parse_addr(fields.get(2)?)?;
            let listening = proto == "tcp" && *fields.get(3)? == TCP_LISTEN;
            let inode = fields.get(9)?.parse().ok()?;
            Some((
                inode,
                Socket::Inet {
                    proto,
                    local,
                    remote,
                    listening,
                },
            ))
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host
/// (little-endian) order, then the port in big-endian hex.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.swap_bytes()).into(),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.swap_bytes().to_be_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.into(),
                None => v6.into(),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `Num RefCount Protocol Flags Type St Inode Path`; abstract names start with @.
pub fn parse_unix(text: &str) -> Vec<(u64, Socket)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let inode = fields.nth(6)?.parse().ok()?;
            let path = fields.next().map(str::to_string);
            Some((inode, Socket::Unix { path }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5501 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D0D4 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 5502 1 0000000000000000 20 4 30 10 -1
";
        let sockets = parse_inet(text, "tcp");
        assert_eq!(sockets[0].0, 5501);
        assert_eq!(sockets[0].1.describe(), "tcp:127.0.0.1:8081 (listening)");
        assert_eq!(
            sockets[1].1.describe(),
            "tcp:127.0.0.1:53460->127.0.0.1:8081"
        );
    }

    #[test]
    fn parses_tcp6_and_mapped_v4() {
        let text = "header
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0 0 0 0 0 7001
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:C000 01 0 0 0 0 0 7002
";
        let sockets = parse_inet(text, "tcp");
        assert_eq!(sockets[0].1.describe(), "tcp:[::1]:8080 (listening)");
        assert_eq!(
            sockets[1].1.describe(),
            "tcp:127.0.0.1:8080->127.0.0.1:49152"
        );
    }

    #[test]
    fn parses_unix() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 9001 /run/app.sock
0000000000000000: 00000003 00000000 00000000 0001 03 9002
0000000000000000: 00000002 00000000 00010000 0001 01 9003 @abstract
";
        let sockets: HashMap<_, _> = parse_unix(text).into_iter().collect();
        assert_eq!(sockets[&9001].describe(), "unix:/run/app.sock");
        assert_eq!(sockets[&9002].describe(), "unix");
        assert_eq!(sockets[&9003].describe(), "unix:@abstract");
    }
}
