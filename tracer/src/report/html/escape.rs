//! Text made safe for the places the page puts it: HTML text and quoted
//! attributes, and JSON inside a `<script>` element.

/// Escapes `&`, `<`, `>` and both quotes: safe in text and in quoted
/// attribute values.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON text for a `<script type="application/json">` element: every `<`
/// becomes `\u003c` (it can only occur inside JSON strings, where that
/// escape means the same), so no `</script>` or `<!--` in the data can end
/// the element early.
pub fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn script_json_cannot_close_its_element_and_parses_back() {
        let value = serde_json::json!({"name": "</script><!-- & \"q\""});
        let embedded = script_json(&value.to_string());
        assert!(!embedded.contains('<'), "{embedded}");
        let back: serde_json::Value = serde_json::from_str(&embedded).unwrap();
        assert_eq!(back, value);
    }
}
