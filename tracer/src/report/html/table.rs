//! An HTML table from columns and rows of cells (already HTML).

use std::fmt::Write;

/// A column: its heading, and whether it holds numbers (right-aligned).
pub type Column = (&'static str, bool);

/// A row: the `<tr>`'s attributes (`id="stall-3" class="..."`, or empty)
/// and one cell per column.
pub struct Row {
    pub attributes: String,
    pub cells: Vec<String>,
}

impl From<Vec<String>> for Row {
    fn from(cells: Vec<String>) -> Self {
        Self {
            attributes: String::new(),
            cells,
        }
    }
}

pub fn render(class: &str, columns: &[Column], rows: Vec<Row>) -> String {
    let align = |numeric: bool| if numeric { " class=\"num\"" } else { "" };
    let mut out = format!("<table class=\"{class}\"><thead><tr>");
    for (head, numeric) in columns {
        let _ = write!(out, "<th{}>{head}</th>", align(*numeric));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        let space = if row.attributes.is_empty() { "" } else { " " };
        let _ = write!(out, "<tr{space}{}>", row.attributes);
        for (cell, (_, numeric)) in row.cells.iter().zip(columns) {
            let _ = write!(out, "<td{}>{cell}</td>", align(*numeric));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}
