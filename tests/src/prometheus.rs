//! A real Prometheus (Debian's `prometheus` package) for the tests: started
//! on loopback with a temporary config and data directory, scraping one
//! target every second, queried over its HTTP API; killed on drop, so on
//! every exit path of a test, a failed assertion included.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";

pub struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A loopback port free now (the kernel's pick).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether Prometheus is installed. Under CI=true its absence is a failure:
/// `cargo xtask test` installs it.
pub fn have_prometheus(test: &str) -> bool {
    std::path::Path::new(PROMETHEUS).exists()
        || crate::skip(test, "needs Prometheus (apt-get install -y prometheus)")
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) every second, and
    /// waits until it is ready.
    pub fn scraping(target: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
                 scrape_configs:\n  - job_name: tracer\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let prometheus = Self {
            child,
            port,
            _dir: dir,
        };
        prometheus.wait_until("ready", Duration::from_secs(30), |p| {
            p.get("/-/ready").is_some_and(|(status, _)| status == 200)
        });
        prometheus
    }

    /// Polls `done` every 200 ms until it holds; panics at the deadline.
    pub fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "Prometheus: not {what} within {timeout:?}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The value of an instant PromQL query that yields one sample, if it
    /// yields one.
    pub fn scalar(&self, promql: &str) -> Option<f64> {
        let (status, body) = self.get(&format!("/api/v1/query?query={}", encode(promql)))?;
        assert_eq!(status, 200, "{promql}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON from Prometheus");
        let result = answer["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{promql}: several series: {body}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("127.0.0.1:{}", self.port), path)
    }
}

/// GET `path` from `addr` (host:port) over HTTP/1.0 (the answer is never
/// chunked): status and body.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
