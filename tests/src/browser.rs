//! Headless Chromium driven over the DevTools protocol (one WebSocket, no
//! Node packages): open a page from disk with the network off, evaluate
//! JavaScript in it, click, take screenshots, and collect what went wrong
//! (exceptions, console errors, requests that left the machine).

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::channel,
    thread,
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

/// Where `cargo xtask test` installs Debian's chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    /// Events of the page seen so far (method, params).
    pub events: Vec<(String, Value)>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with a fresh profile and a blank 1280×800 page whose
    /// network is off (only file:, data: and about: loads can succeed).
    pub fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        let url = devtools_url(child.stderr.take().expect("piped stderr"));
        let (socket, _) = tungstenite::connect(url.as_str()).expect("DevTools WebSocket");
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().expect("session").into();
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            browser.call(domain, json!({}));
        }
        browser.call(
            "Network.emulateNetworkConditions",
            json!({"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        );
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Opens a file and waits until it has loaded.
    pub fn open(&mut self, path: &Path) {
        let url = format!("file://{}", path.canonicalize().expect("page").display());
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for("Page.loadEventFired");
    }

    /// The value of a JavaScript expression (JSON-serializable).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// A left click at a point of the viewport, as a mouse makes it.
    pub fn click(&mut self, x: f64, y: f64) {
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// The mouse moved to a point of the viewport (hover).
    pub fn hover(&mut self, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        );
    }

    /// A turn of the mouse wheel at a point (negative `delta_y`: towards
    /// the user, which zooms in).
    pub fn wheel(&mut self, x: f64, y: f64, delta_y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": delta_y}),
        );
    }

    /// Saves the viewport as a PNG.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("screenshot dir");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Exceptions, console errors and log errors, as text.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(method, params)| match method.as_str() {
                "Runtime.exceptionThrown" => true,
                "Runtime.consoleAPICalled" => params["type"] == "error",
                "Log.entryAdded" => params["entry"]["level"] == "error",
                _ => false,
            })
            .map(|(method, params)| format!("{method}: {params}"))
            .collect()
    }

    /// Every URL the page requested.
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(method, _)| method == "Network.requestWillBeSent")
            .filter_map(|(_, params)| params["request"]["url"].as_str().map(str::to_string))
            .collect()
    }

    /// Sends a command (to the page once attached) and waits for its
    /// result, keeping the events that arrive meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send to DevTools");
        loop {
            let reply = self.receive();
            if reply["id"] == id {
                if let Some(error) = reply.get("error") {
                    panic!("{method}: {error}");
                }
                return reply["result"].clone();
            }
        }
    }

    fn wait_for(&mut self, event: &str) {
        let deadline = Instant::now() + TIMEOUT;
        let seen = self.events.len();
        while !self.events[seen..].iter().any(|(m, _)| m == event) {
            assert!(Instant::now() < deadline, "no {event} within {TIMEOUT:?}");
            self.receive();
        }
    }

    /// The next message; events are kept in `events`.
    fn receive(&mut self) -> Value {
        loop {
            let message = self.socket.read().expect("read from DevTools");
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if let Some(method) = value["method"].as_str() {
                self.events
                    .push((method.to_string(), value["params"].clone()));
            }
            return value;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's DevTools WebSocket, from its "DevTools listening on" line.
fn devtools_url(stderr: impl std::io::Read + Send + 'static) -> String {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    rx.recv_timeout(TIMEOUT)
        .expect("chromium printed no DevTools URL")
}

/// Whether Chromium is installed; under CI=true its absence is a failure.
pub fn available(test: &str) -> bool {
    Path::new(CHROMIUM).exists()
        || crate::skip(
            test,
            "needs /usr/bin/chromium (cargo xtask test installs it)",
        )
}

/// `target/html-report/NAME.png` of the workspace.
pub fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/html-report")
        .join(format!("{name}.png"))
}
