//! The flame graphs: inferno's interactive SVGs (click to zoom, Ctrl-F or
//! "Search" to search), each in a frame of its own so that their scripts
//! and element ids do not meet.

use super::escape::html;

/// Runs in each frame before inferno's script (see the file).
const FRAME_SCRIPT: &str = include_str!("flame_frame.js");
/// inferno's fluid drawing drops the SVG's width, which in an HTML page
/// would leave it 300 px wide: it takes the frame's width instead.
const FRAME_STYLE: &str = "body{margin:0} svg{display:block;width:100%}";

/// A section with the flame graph `svg` (inferno's output).
pub fn section(id: &str, title: &str, about: &str, svg: &str) -> String {
    // The XML prolog and doctype mean nothing inside an HTML document.
    let svg = svg.find("<svg").map_or(svg, |start| &svg[start..]);
    // The frame's 1 px borders are inside its height.
    let height = svg_height(svg).unwrap_or(600) + 2;
    let document = format!(
        "<!DOCTYPE html><meta charset=\"utf-8\"><style>{FRAME_STYLE}</style><script>{FRAME_SCRIPT}</script>{svg}"
    );
    format!(
        "<section id=\"{id}\"><h2>{title}</h2><p class=\"muted\">{about} Click a frame to zoom in, \
         <q>Reset Zoom</q> to zoom out; Ctrl-F or <q>Search</q> (top right) highlights matching frames.</p>\
         <iframe class=\"flame\" title=\"{title}\" style=\"height:{height}px\" srcdoc=\"{}\"></iframe></section>",
        html(&document)
    )
}

/// The `height` attribute of the root `<svg>` element.
fn svg_height(svg: &str) -> Option<u32> {
    let tag = &svg[..svg.find('>')?];
    let value = tag.split(" height=\"").nth(1)?;
    value[..value.find('"')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_the_svg_with_its_height_and_escaped() {
        let svg = "<?xml version=\"1.0\"?><svg width=\"1200\" height=\"438\" onload=\"init(evt)\"><text>a&amp;b</text></svg>";
        let html = section("cpu", "CPU", "On CPU.", svg);
        assert!(html.contains("style=\"height:440px\""), "{html}");
        assert!(!html.contains("<?xml"), "{html}");
        assert!(html.contains("srcdoc=\"&lt;!DOCTYPE html&gt;"), "{html}");
        // The SVG's own entity survives one level of attribute decoding.
        assert!(html.contains("a&amp;amp;b"), "{html}");
        assert!(!html.contains("<svg"), "{html}");
    }
}
