//! The page's data, packed: the JSON report, the timeline events the page
//! draws, the flame graphs' documents and the stacks of the rows, as one
//! JSON object, gzip'd and base64'd into a `<script>` element. The page's
//! script unpacks it with the browser's own DecompressionStream. A busy
//! minute's report repeats the same deep stacks thousands of times: packed,
//! its page stays a few MB instead of tens.

use std::{collections::HashMap, io::Write};

use base64::Engine;
use flate2::{Compression, write::GzEncoder};
use serde_json::Value;

/// The stacks the rows expand to, each HTML once: a row names its stack by
/// number (`data-stack`), the script fills it in when opened.
#[derive(Default)]
pub struct Stacks {
    html: Vec<String>,
    ids: HashMap<String, usize>,
}

impl Stacks {
    /// The number of stack `html`, added if new.
    pub fn add(&mut self, html: String) -> usize {
        if let Some(&id) = self.ids.get(&html) {
            return id;
        }
        self.html.push(html.clone());
        self.ids.insert(html, self.html.len() - 1);
        self.html.len() - 1
    }

    pub fn into_html(self) -> Vec<String> {
        self.html
    }
}

/// `value` as JSON, gzip'd, in base64 (safe text inside any element).
pub fn pack(value: &Value) -> String {
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(value.to_string().as_bytes());
    let bytes = gz.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// timeline.json's events the page draws: thread names, the loops' busy
/// counters and the slices (stalls, blocking calls, off-CPU waits). CPU
/// samples and iteration rates stay in timeline.json.
pub fn drawn_events(timeline: &str) -> Value {
    let trace: Value = serde_json::from_str(timeline).unwrap_or(Value::Null);
    let drawn = |e: &&Value| match e["ph"].as_str() {
        Some("M" | "X") => true,
        Some("C") => e["name"].as_str().is_some_and(|n| n.ends_with(" busy")),
        _ => false,
    };
    trace["traceEvents"]
        .as_array()
        .map(|events| events.iter().filter(drawn).cloned().collect())
        .unwrap_or_default()
}

/// What the page's script does: base64, gunzip, JSON.
#[cfg(test)]
pub fn unpack(text: &str) -> Value {
    use std::io::Read;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut json)
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let value = json!({"report": {"stalls": [1, 2]}, "stacks": ["<ol></ol>"]});
        let packed = pack(&value);
        assert!(
            packed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        );
        assert_eq!(unpack(&packed), value);
    }

    #[test]
    fn each_stack_is_kept_once() {
        let mut stacks = Stacks::default();
        assert_eq!(stacks.add("<ol>a</ol>".into()), 0);
        assert_eq!(stacks.add("<ol>b</ol>".into()), 1);
        assert_eq!(stacks.add("<ol>a</ol>".into()), 0);
        assert_eq!(stacks.into_html(), ["<ol>a</ol>", "<ol>b</ol>"]);
    }

    #[test]
    fn only_drawn_events_are_kept() {
        let timeline = json!({"traceEvents": [
            {"ph": "M", "name": "thread_name"},
            {"ph": "C", "name": "loop 7 busy"},
            {"ph": "C", "name": "loop 7 iterations"},
            {"ph": "X", "name": "STALL"},
            {"ph": "i", "name": "CPU: f"},
        ]});
        let kept = drawn_events(&timeline.to_string());
        let names: Vec<&str> = kept
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["thread_name", "loop 7 busy", "STALL"]);
    }
}
