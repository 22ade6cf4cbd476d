//! Frames of code in anonymous executable memory: a JIT's code. Named by the
//! runtime's perf map when it writes one, else `[JIT] 0x…`; never by an ELF
//! symbol (the nearest one before the address belongs to another file).

use crate::trace::{Frame, FrameKind};

/// The module shown for code in anonymous memory.
pub const ANON_MODULE: &str = "[anon]";

/// A frame for JIT code at `addr`, named `name` by a perf map if known.
pub fn jit_frame(addr: u64, name: Option<&str>) -> Frame {
    let (function, file, line) = match name {
        Some(name) => split_perf_name(name),
        None => (format!("[JIT] {addr:#x}"), None, None),
    };
    Frame {
        function,
        file,
        line,
        column: None,
        module: Some(ANON_MODULE.to_string()),
        kind: FrameKind::Native,
    }
}

/// V8 names code `Tag:<tier>function file:line[:column]` (`JS:*spin
/// /srv/app.js:12:3`, `LazyCompile:~main file:///srv/app.mjs:40`): split
/// into function, file and line. Other runtimes' names (Python's
/// `py::f:/app.py`, a JVM's signatures) are kept whole.
fn split_perf_name(name: &str) -> (String, Option<String>, Option<u32>) {
    let whole = || (name.to_string(), None, None);
    let Some((tag, rest)) = name.split_once(':') else {
        return whole();
    };
    const V8_TAGS: &[&str] = &["JS", "LazyCompile", "Function", "Script", "Eval"];
    if !V8_TAGS.contains(&tag) {
        return whole();
    }
    // V8 marks the tier: `*` optimized (TurboFan), `~` interpreted,
    // `^` Sparkplug, `+` Maglev.
    let rest = rest.trim_start_matches(['*', '~', '^', '+']);
    let (function, location) = rest.split_once(' ').unwrap_or((rest, ""));
    let function = if function.is_empty() {
        "(anonymous)".to_string()
    } else {
        function.to_string()
    };
    let (file, line) = split_location(location);
    (function, file, line)
}

/// `file:line[:column]`; a location without a line is a file alone.
fn split_location(location: &str) -> (Option<String>, Option<u32>) {
    if location.is_empty() {
        return (None, None);
    }
    let numbered = |text: &str| -> Option<(String, u32)> {
        let (file, line) = text.rsplit_once(':')?;
        Some((file.to_string(), line.parse().ok()?))
    };
    // With a column, the line is the second number from the end.
    if let Some((before, _column)) = numbered(location)
        && let Some((file, line)) = numbered(&before)
    {
        return (Some(file), Some(line));
    }
    match numbered(location) {
        Some((file, line)) => (Some(file), Some(line)),
        None => (Some(location.to_string()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_jit_code_says_so() {
        let frame = jit_frame(0x7f22_0a12_c86c, None);
        assert_eq!(frame.function, "[JIT] 0x7f220a12c86c");
        assert_eq!(frame.module.as_deref(), Some("[anon]"));
        assert_eq!((frame.file, frame.line), (None, None));
    }

    #[test]
    fn v8_names_are_split() {
        let frame = jit_frame(1, Some("JS:*spinForRender /srv/app.js:12:3"));
        assert_eq!(frame.function, "spinForRender");
        assert_eq!(frame.file.as_deref(), Some("/srv/app.js"));
        assert_eq!(frame.line, Some(12));
        let frame = jit_frame(1, Some("LazyCompile:~main file:///srv/app.mjs:40"));
        assert_eq!(frame.function, "main");
        assert_eq!(frame.file.as_deref(), Some("file:///srv/app.mjs"));
        assert_eq!(frame.line, Some(40));
        let frame = jit_frame(1, Some("JS:^ /srv/app.js:7:1"));
        assert_eq!(frame.function, "(anonymous)");
        assert_eq!(frame.line, Some(7));
        let frame = jit_frame(1, Some("Builtin:ArgumentsAdaptorTrampoline"));
        assert_eq!(frame.function, "Builtin:ArgumentsAdaptorTrampoline");
    }

    #[test]
    fn other_runtimes_names_are_kept() {
        let frame = jit_frame(1, Some("py::handle:/srv/app.py"));
        assert_eq!(frame.function, "py::handle:/srv/app.py");
        assert_eq!(frame.file, None);
    }
}
