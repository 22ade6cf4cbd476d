//! Stacks as HTML: one line per frame, innermost first, styled by kind
//! (Python, JavaScript or other JIT code, native, kernel) with file:line.

use std::fmt::Write;

use super::{data::Stacks, escape::html};
use crate::{
    report::text::short_path,
    trace::{Frame, FrameKind},
};

/// Reads the frames of a JSON `stack`; a malformed frame is left out.
pub fn parse(stack: &serde_json::Value) -> Vec<Frame> {
    stack
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| serde_json::from_value(f.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The line people look for: the innermost Python or JavaScript frame
/// where there is one (the interpreter's own native frames are below it),
/// else the innermost user-space frame.
pub fn code_frame(frames: &[Frame]) -> Option<&Frame> {
    frames
        .iter()
        .find(|f| f.kind.is_script())
        .or_else(|| frames.iter().find(|f| f.kind == FrameKind::Native))
        .or(frames.first())
}

/// The CSS class of a frame: JavaScript (named from V8's heap, or JIT code
/// named by node's perf map) is told apart from compiled native code.
fn class(frame: &Frame) -> &'static str {
    match frame.kind {
        FrameKind::Python => "py",
        FrameKind::Kernel => "kernel",
        FrameKind::Truncated => "truncated",
        FrameKind::Js => "jit",
        FrameKind::Native if frame.module.as_deref() == Some("[anon]") => "jit",
        FrameKind::Native => "native",
    }
}

/// One frame: `function file:line[:column] module`, the full path on hover.
pub fn frame(frame: &Frame) -> String {
    let mut out = format!(
        "<span class=\"frame {}\"><span class=\"fn\">{}</span>",
        class(frame),
        html(&frame.function)
    );
    if let Some(file) = &frame.file {
        let line = frame
            .position()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            " <span class=\"loc\" title=\"{}{line}\">{}{line}</span>",
            html(file),
            html(short_path(file))
        );
    }
    if let (Some(module), FrameKind::Native | FrameKind::Kernel) = (&frame.module, frame.kind) {
        let _ = write!(out, " <span class=\"mod\">{}</span>", html(module));
    }
    out.push_str("</span>");
    out
}

/// The whole stack, one frame a line; "no stack" when empty.
pub fn stack(frames: &[Frame]) -> String {
    if frames.is_empty() {
        return "<p class=\"muted\">no stack</p>".into();
    }
    let mut out = String::from("<ol class=\"stack\">");
    for f in frames {
        let _ = write!(out, "<li>{}</li>", frame(f));
    }
    out.push_str("</ol>");
    out
}

/// The code line, expandable to the whole stack (kept in `stacks`, which
/// the page's script fills in when opened).
pub fn expandable(frames: &[Frame], stacks: &mut Stacks) -> String {
    match code_frame(frames) {
        None => "<span class=\"muted\">no stack</span>".into(),
        Some(top) => format!(
            "<details class=\"code\" data-stack=\"{}\"><summary>{}</summary></details>",
            stacks.add(stack(frames)),
            frame(top),
        ),
    }
}

/// The code line of a JSON report object with a `stack` (a stall's cause,
/// a blocking group, an off-CPU row), expandable to the stack.
pub fn of(value: &serde_json::Value, stacks: &mut Stacks) -> String {
    expandable(&parse(&value["stack"]), stacks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(function: &str, kind: FrameKind, module: Option<&str>) -> Frame {
        Frame {
            function: function.into(),
            file: Some("/srv/app/handlers.py".into()),
            line: Some(12),
            column: None,
            module: module.map(str::to_string),
            kind,
        }
    }

    #[test]
    fn python_frame_is_the_code_line() {
        let frames = vec![
            frame_of("__libc_recv", FrameKind::Native, Some("libc.so.6")),
            frame_of("fetch<T>", FrameKind::Python, None),
        ];
        assert_eq!(code_frame(&frames).unwrap().function, "fetch<T>");
        let html = frame(&frames[1]);
        assert!(html.contains("class=\"frame py\""), "{html}");
        assert!(html.contains("fetch&lt;T&gt;"), "{html}");
        assert!(html.contains(">app/handlers.py:12<"), "{html}");
        assert!(html.contains("title=\"/srv/app/handlers.py:12\""), "{html}");
    }

    #[test]
    fn kinds_are_styled_apart() {
        let jit = frame(&frame_of("render", FrameKind::Native, Some("[anon]")));
        let native = frame(&frame_of("recv", FrameKind::Native, Some("libc.so.6")));
        let kernel = frame(&frame_of("tcp_recvmsg", FrameKind::Kernel, Some("kernel")));
        assert!(jit.contains("frame jit"), "{jit}");
        assert!(native.contains("frame native") && native.contains(">libc.so.6<"));
        assert!(kernel.contains("frame kernel"), "{kernel}");
    }
}
