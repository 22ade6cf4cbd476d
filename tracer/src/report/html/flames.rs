//! The flame graphs: inferno's interactive SVGs (click to zoom, Ctrl-F or
//! "Search" to search), each in a frame of its own so that their scripts
//! and element ids do not meet. The frame's document travels in the page's
//! packed data (an SVG of a busy trace is megabytes of repeated markup);
//! the page's script gives it to the frame (`srcdoc`).

/// Runs in each frame before inferno's script (see the file).
const FRAME_SCRIPT: &str = include_str!("flame_frame.js");
/// inferno's fluid drawing drops the SVG's width, which in an HTML page
/// would leave it 300 px wide: it takes the frame's width instead.
const FRAME_STYLE: &str = "body{margin:0} svg{display:block;width:100%}";

/// A flame graph's section, and the document of its frame (`data-flame`
/// names it in the page's data).
pub struct Flame {
    pub section: String,
    pub document: String,
}

/// The section of the flame graph `svg` (inferno's output).
pub fn section(id: &str, title: &str, about: &str, svg: &str) -> Flame {
    // The XML prolog and doctype mean nothing inside an HTML document.
    let svg = svg.find("<svg").map_or(svg, |start| &svg[start..]);
    // The frame's 1 px borders are inside its height.
    let height = svg_height(svg).unwrap_or(600) + 2;
    let section = format!(
        "<section id=\"{id}\"><h2>{title}</h2><p class=\"muted\">{about} Click a frame to zoom in, \
         <q>Reset Zoom</q> to zoom out; Ctrl-F or <q>Search</q> (top right) highlights matching frames.</p>\
         <iframe class=\"flame\" title=\"{title}\" style=\"height:{height}px\" data-flame=\"{id}\"></iframe></section>"
    );
    Flame {
        section,
        document: format!(
            "<!DOCTYPE html><meta charset=\"utf-8\"><style>{FRAME_STYLE}</style><script>{FRAME_SCRIPT}</script>{svg}"
        ),
    }
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
    fn frames_the_svg_with_its_height() {
        let svg = "<?xml version=\"1.0\"?><svg width=\"1200\" height=\"438\" onload=\"init(evt)\"><text>a&amp;b</text></svg>";
        let flame = section("cpu", "CPU", "On CPU.", svg);
        let html = &flame.section;
        assert!(html.contains("style=\"height:440px\""), "{html}");
        assert!(html.contains("data-flame=\"cpu\""), "{html}");
        assert!(!html.contains("<svg"), "{html}");
        let document = &flame.document;
        assert!(document.starts_with("<!DOCTYPE html>"), "{document}");
        assert!(!document.contains("<?xml"), "{document}");
        assert!(
            document.ends_with("<text>a&amp;b</text></svg>"),
            "{document}"
        );
    }
}
