//! Reading the JSON report (docs/json.md): the page renders that documented
//! form rather than the Rust model, so a field added there (e.g. a stall's
//! asyncio task) shows up without a second path through the code.

use serde_json::Value;

use super::escape::html;
use crate::duration::format_ns;

/// A number field (0 when missing).
pub fn num(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or(0)
}

/// A string field, HTML-escaped ("" when missing or null).
pub fn text(value: &Value, key: &str) -> String {
    value[key].as_str().map(html).unwrap_or_default()
}

/// A nanosecond field as `301 ms`.
pub fn duration(value: &Value, key: &str) -> String {
    format_ns(num(value, key))
}

/// An array field (empty when missing).
pub fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value[key].as_array().map_or(&[], Vec::as_slice)
}
