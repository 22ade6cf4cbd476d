//! The page built from the sample trace, with names that need escaping.

use super::*;
use crate::{
    analyze::analyze,
    recording::sample,
    report::{flamegraph, timeline},
    trace::FrameKind,
};

const NASTY: &str = "<script>alert('x')</script> & \"q\"";
const NASTY_HTML: &str = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;";

/// The sample trace with a Python function and the target named NASTY.
fn page() -> (String, Report) {
    let mut trace = sample::trace();
    trace.target.comm = NASTY.into();
    for frame in trace.stacks.iter_mut().flatten() {
        if frame.kind == FrameKind::Python && frame.function == "handle" {
            frame.function = NASTY.into();
        }
    }
    let report = analyze(&trace);
    let cpu = flamegraph::svg(&flamegraph::cpu_folded(&trace), "CPU", "samples");
    let offcpu = flamegraph::svg(&flamegraph::offcpu_folded(&report.off_cpu), "Off-CPU", "ms");
    let flames = FlameGraphs {
        cpu_svg: &cpu,
        offcpu_svg: &offcpu,
    };
    let html = render(&report, &timeline::render(&trace, &report), &flames);
    (html, report)
}

#[test]
fn names_are_escaped_everywhere() {
    let (html, _) = page();
    assert!(!html.contains(NASTY), "a raw name reached the page");
    assert!(!html.contains("alert('x')</script>"));
    assert!(html.contains(&format!("<title>tracer: {NASTY_HTML} (pid")));
    // Only the page's data and its script close a script element.
    assert_eq!(html.matches("</script>").count(), 2);
    // The stacks the script puts in the page (where the frame named NASTY
    // is) are escaped too.
    let stacks = packed(&html)["stacks"].to_string();
    assert!(!stacks.contains(NASTY), "{stacks}");
    assert!(
        stacks.contains(&format!("<span class=\\\"fn\\\">{NASTY_HTML}</span>")),
        "{stacks}"
    );
}

/// The page's packed data, unpacked.
fn packed(html: &str) -> Value {
    let start = html
        .find("<script type=\"application/octet-stream\" id=\"page-data\">")
        .unwrap();
    let data = &html[start..];
    data::unpack(&data[data.find('>').unwrap() + 1..data.find("</script>").unwrap()])
}

#[test]
fn every_stall_has_its_row_with_cause_and_code_line() {
    let (html, report) = page();
    assert!(!report.stalls.is_empty());
    for (index, stall) in report.stalls.iter().enumerate() {
        let start = html
            .find(&format!("<tr id=\"stall-{index}\""))
            .unwrap_or_else(|| panic!("no row for stall {index}"));
        let row = &html[start..start + html[start..].find("</tr>").unwrap()];
        assert!(
            row.contains(&escape::html(&stall.cause.description)),
            "{row}"
        );
        if let Some(code) = frames::code_frame(&stall.cause.stack) {
            let name = format!("<span class=\"fn\">{}</span>", escape::html(&code.function));
            assert!(row.contains(&name), "{row}");
        }
    }
    assert!(!html.contains(&format!("id=\"stall-{}\"", report.stalls.len())));
}

#[test]
fn the_packed_data_holds_the_json_report_stacks_and_flame_graphs() {
    let (html, report) = page();
    let data = packed(&html);
    assert_eq!(data["report"], serde_json::to_value(&report).unwrap());
    // Each row's stack is one of the packed stacks.
    let stacks = data["stacks"].as_array().unwrap();
    let rows = html.matches("data-stack=\"").count();
    assert!(
        rows > stacks.len() && !stacks.is_empty(),
        "{rows} rows, {} stacks",
        stacks.len()
    );
    for n in 0..stacks.len() {
        assert!(
            html.contains(&format!("data-stack=\"{n}\"")),
            "stack {n} unused"
        );
    }
    for flame in ["cpu", "offcpu"] {
        let document = data["flames"][flame].as_str().unwrap();
        assert!(document.contains("<svg"), "{flame}: {document}");
        assert!(html.contains(&format!("data-flame=\"{flame}\"")));
    }
}

#[test]
fn a_stall_task_is_shown_when_the_report_has_one() {
    let (_, report) = page();
    let mut json = serde_json::to_value(&report).unwrap();
    // The sample trace's stalls ran in a task: without one, no column.
    for group in json["stall_groups"].as_array_mut().unwrap() {
        group["cause"]["task"] = serde_json::Value::Null;
    }
    assert!(!stalls::groups(&json, &mut data::Stacks::default()).contains("<th>task</th>"));
    json["stall_groups"][0]["cause"]["task"] =
        serde_json::json!({"name": "fetch-<7>", "coro": "fetch_user"});
    let groups = stalls::groups(&json, &mut data::Stacks::default());
    assert!(groups.contains("<th>task</th>"), "{groups}");
    assert!(
        groups.contains("<span class=\"task\">fetch-&lt;7&gt;</span>"),
        "{groups}"
    );
    assert!(groups.contains("fetch_user"), "{groups}");
}

#[test]
fn fills_each_marker_once() {
    assert_eq!(
        fill("<p>{{a}} {{b}} {{c}}</p>", &[("a", "{{b}}"), ("b", "2")]),
        "<p>{{b}} 2 {{c}}</p>"
    );
}
