//! A terminal screen as a picture: the ANSI capture turned into HTML by
//! `aha` (Debian's ANSI-to-HTML adapter), shot by headless Chromium.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Writes `name.html` and `name.png` into `dir`; the PNG is `width` x
/// `height` pixels. Panics if a tool fails.
pub fn terminal_png(ansi: &str, dir: &Path, name: &str, width: u32, height: u32) -> PathBuf {
    std::fs::create_dir_all(dir).expect("screenshot dir");
    let mut aha = Command::new("aha")
        .args(["--black", "--title", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run aha");
    aha.stdin
        .take()
        .expect("aha stdin")
        .write_all(ansi.as_bytes())
        .expect("write to aha");
    let html = aha.wait_with_output().expect("aha output");
    assert!(html.status.success(), "aha failed");
    // A font with box-drawing glyphs, at a size that fits the screen.
    let page = String::from_utf8_lossy(&html.stdout).replace(
        "</head>",
        "<style>body{margin:8px} pre{font-family:'DejaVu Sans Mono',monospace;font-size:13px;line-height:normal}</style></head>",
    );
    let html_path = dir.join(format!("{name}.html"));
    std::fs::write(&html_path, page).expect("write html");
    let png = dir.join(format!("{name}.png"));
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--window-size={width},{height}"),
            &format!("--screenshot={}", png.display()),
        ])
        .arg(format!("file://{}", html_path.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success() && png.exists(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    png
}
