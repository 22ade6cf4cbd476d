//! A terminal for tests of full-screen programs (`tracer top`): a tmux
//! server of our own (its own socket), one session of a given size running
//! a plain shell; keys are sent and the screen is read with `capture-pane`.
//! The server is killed on drop.

use std::{
    path::Path,
    process::{Command, Output},
    thread,
    time::{Duration, Instant},
};

/// The shell's prompt (a space follows it), set so that a test can tell
/// that the shell has the terminal again.
pub const PROMPT: &str = "top-test$";

/// Whether tmux is installed (`cargo xtask test` installs it). Under
/// CI=true a missing tmux is a failure.
pub fn have_tmux(test: &str) -> bool {
    if Path::new("/usr/bin/tmux").exists() {
        return true;
    }
    crate::skip(test, "needs tmux (cargo xtask test installs it)")
}

pub struct Tmux {
    /// The server's socket lives here, and goes with it.
    dir: tempfile::TempDir,
}

impl Tmux {
    /// A session `width` x `height` running bash with [`PROMPT`].
    pub fn start(width: u16, height: u16) -> Self {
        let tmux = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "test",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &format!("PS1='{PROMPT} ' exec bash --norc --noprofile"),
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        tmux.wait_for("the shell's prompt", Duration::from_secs(10), |screen| {
            screen.contains(PROMPT)
        });
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(self.dir.path().join("socket"))
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Types `text` and Enter.
    pub fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "test", "-l", text]);
        self.keys("Enter");
    }

    /// Sends keys as tmux names them ("q", "Space", "C-c", "Enter").
    pub fn keys(&self, keys: &str) {
        let out = self.run(&["send-keys", "-t", "test", keys]);
        assert!(out.status.success(), "tmux send-keys {keys}: {out:?}");
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-t", "test", "-p"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours, as ANSI escape sequences.
    pub fn screen_ansi(&self) -> String {
        let out = self.run(&["capture-pane", "-t", "test", "-p", "-e"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen every 50 ms until `ready` holds; returns it.
    pub fn wait_for(&self, what: &str, timeout: Duration, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on the screen within {timeout:?}:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}
