//! The scrape endpoint: `GET /metrics` over HTTP/1.1 on the recording's own
//! runtime. Each connection is a task of its own that only reads the latest
//! snapshot, so a slow or stuck client never holds up the recording loop.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};

use super::exposition::{CONTENT_TYPE, Shared, encode};

/// A request head larger than this is refused (a scrape's is ~200 bytes).
const MAX_HEAD: usize = 8192;
/// A client gets this long to send its request and take the answer.
const CLIENT_TIME: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("cannot serve --metrics on {addr}: {source}")]
pub struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Listens on `addr` now (so a taken port is an error before tracing starts)
/// and serves scrapes from a task until the runtime ends.
pub async fn serve(addr: SocketAddr, shared: Shared) -> Result<SocketAddr, ListenError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Err(error) = timeout(CLIENT_TIME, answer(stream, &shared)).await {
                            log::debug!("metrics client too slow: {error}");
                        }
                    });
                }
                Err(error) => log::warn!("--metrics: cannot accept a connection: {error}"),
            }
        }
    });
    Ok(bound)
}

async fn answer(mut stream: TcpStream, shared: &Shared) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    let response = match request_path(&head) {
        Some("/metrics") => response("200 OK", CONTENT_TYPE, &encode(shared)),
        Some(_) => response("404 Not Found", "text/plain", "try /metrics\n"),
        None => response("400 Bad Request", "text/plain", "not an HTTP GET\n"),
    };
    if let Err(error) = stream.write_all(response.as_bytes()).await {
        log::debug!("metrics client went away: {error}");
    }
    let _ = stream.shutdown().await;
}

/// The request up to its blank line, or None if it is too long or cut.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

/// The path of a GET request, without its query.
fn request_path(head: &str) -> Option<&str> {
    let mut words = head.lines().next()?.split_whitespace();
    let method = words.next()?;
    let target = words.next()?;
    (method == "GET").then(|| target.split('?').next().unwrap_or(target))
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_requests() {
        let scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(request_path(scrape), Some("/metrics"));
        assert_eq!(
            request_path("GET /metrics?x=1 HTTP/1.1\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(request_path("POST /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_path("\r\n\r\n"), None);
    }
}
