//! Describing an fd from what the kernel read at the event ([`FdInfo`]),
//! falling back to /proc for what the kernel does not name (file paths,
//! unix socket paths, anonymous inodes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tracer_common::{
    FdInfo,
    kernel::{FD_FILE, FD_INET, FD_INET6, FD_OTHER, FD_PIPE, FD_SOCKET},
};

use crate::{
    procfs::{fd::FdResolver, net::Socket},
    trace::FdKind,
};

/// The kind of fd the kernel saw.
pub fn kind(info: &FdInfo) -> FdKind {
    match info.kind {
        FD_INET | FD_INET6 | FD_SOCKET => FdKind::Socket,
        FD_PIPE => FdKind::Pipe,
        FD_FILE => FdKind::File,
        FD_OTHER => FdKind::Other,
        _ => FdKind::Unknown,
    }
}

const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;

/// `tcp:127.0.0.1:5000->127.0.0.1:80`, `pipe`, or what /proc says now.
pub fn describe(info: &FdInfo, pid: u32, fd: i32, fds: &mut FdResolver) -> Option<String> {
    match info.kind {
        FD_INET | FD_INET6 => Some(inet(info).describe()),
        FD_PIPE => Some("pipe".to_string()),
        _ => fds.describe(pid, fd),
    }
}

fn inet(info: &FdInfo) -> Socket {
    let addr = |bytes: &[u8; 16], port: u16| -> SocketAddr {
        let ip: IpAddr = if info.kind == FD_INET {
            Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()
        } else {
            let v6 = Ipv6Addr::from(*bytes);
            v6.to_ipv4_mapped().map_or(v6.into(), IpAddr::from)
        };
        SocketAddr::new(ip, port)
    };
    let proto = match info.protocol {
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        _ => "ip",
    };
    Socket::Inet {
        proto,
        local: addr(&info.local_addr, info.local_port),
        remote: addr(&info.remote_addr, info.remote_port),
        listening: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_inet_sockets() {
        let mut info = FdInfo {
            kind: FD_INET,
            protocol: IPPROTO_TCP,
            local_port: 53412,
            remote_port: 8081,
            ..FdInfo::default()
        };
        info.local_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        info.remote_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let mut fds = FdResolver::default();
        assert_eq!(
            describe(&info, 0, 3, &mut fds).as_deref(),
            Some("tcp:127.0.0.1:53412->127.0.0.1:8081")
        );
        info.kind = FD_INET6;
        info.protocol = IPPROTO_UDP;
        info.local_addr = Ipv6Addr::LOCALHOST.octets();
        info.remote_port = 0;
        assert_eq!(
            describe(&info, 0, 3, &mut fds).as_deref(),
            Some("udp:[::1]:53412")
        );
    }
}
