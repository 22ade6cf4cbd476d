//! report.html of the demo service, opened from disk by headless Chromium
//! with the network off: no errors, every stall of the same run's JSON
//! report in the DOM with its cause and code line, a click on a stall of the
//! timeline selects its row, the flame graphs zoom. Screenshots (1280×800)
//! go to target/html-report/. And the page of a 60 s trace of a busy
//! service stays small and opens fast (the time printed, not asserted).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{
    Target, Tracer,
    browser::{self, Browser},
    pyenv_python, require_root, tracer_bin,
};

/// The demo's page must stay small enough to mail or attach to a ticket.
const MAX_PAGE_BYTES: u64 = 2 * 1024 * 1024;
/// ... and a minute of a busy service's too.
const MAX_BUSY_PAGE_BYTES: u64 = 5 * 1024 * 1024;
/// How long the busy service is traced.
const BUSY_SECONDS: u64 = 60;

#[test]
fn demo_report_html_in_chromium() {
    require_root!("demo_report_html_in_chromium");
    if !browser::available("demo_report_html_in_chromium") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../demo/blocking_service.py");
    let mut target =
        Target::start(Command::new(pyenv_python("3.11")).args([script, "--rounds", "2", "--wait"]));
    let recording = out.path().join("demo.rec");
    let tracer = Tracer::attach(
        target.pid,
        &[
            "--output",
            out.path().to_str().unwrap(),
            "--record",
            recording.to_str().unwrap(),
        ],
    );
    target.go();
    assert!(target.wait(Duration::from_secs(60)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let page = out.path().join("report.html");
    let size = std::fs::metadata(&page).unwrap().len();
    assert!(size < MAX_PAGE_BYTES, "report.html is {size} bytes");
    eprintln!("report.html: {size} bytes");
    same_page_from_the_recording(&recording, &page);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    let stalls = report["stalls"].as_array().unwrap();
    assert!(stalls.len() >= 8, "2 rounds of 4 blockers: {stalls:?}");

    let mut browser = Browser::start();
    open_report(&mut browser, &page);
    browser.screenshot(&browser::screenshot_path("1-first-screen"));

    for (index, stall) in stalls.iter().enumerate() {
        let row = browser.eval(&format!(
            "document.getElementById('stall-{index}')?.textContent ?? null"
        ));
        let row = row
            .as_str()
            .unwrap_or_else(|| panic!("no row for stall {index}"));
        let cause = stall["cause"]["description"].as_str().unwrap();
        assert!(
            row.contains(cause),
            "stall {index}: {cause:?} not in {row:?}"
        );
        if let Some(code) = python_frame(&stall["cause"]["stack"]) {
            assert!(
                row.contains(&code),
                "stall {index}: {code:?} not in {row:?}"
            );
        }
    }
    let rows = browser.eval("document.querySelectorAll('tr[id^=stall-]').length");
    assert_eq!(rows, stalls.len());
    // A row's code line opens to its whole stack, frame by frame.
    let (index, stall) = stalls
        .iter()
        .enumerate()
        .find(|(_, s)| python_frame(&s["cause"]["stack"]).is_some())
        .expect("a stall with Python frames");
    let frames = stall["cause"]["stack"].as_array().unwrap().len();
    let shown = format!("document.querySelectorAll('#stall-{index} ol.stack li').length");
    assert_eq!(browser.eval(&shown), 0);
    browser.eval(&format!(
        "document.querySelector('#stall-{index} summary').click()"
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while browser.eval(&shown) != frames && Instant::now() < deadline {}
    assert_eq!(browser.eval(&shown), frames, "stall {index}'s stack");
    let function = stall["cause"]["stack"][0]["function"].as_str().unwrap();
    let first = browser.eval(&format!(
        "document.querySelector('#stall-{index} ol.stack li').textContent"
    ));
    assert!(first.as_str().unwrap().starts_with(function), "{first}");
    browser.eval(&format!(
        "document.querySelector('#stall-{index} summary').click()"
    ));
    let groups = browser.eval("document.querySelectorAll('table.groups tbody tr').length");
    assert_eq!(groups, report["stall_groups"].as_array().unwrap().len());

    // Every stall is drawn on the timeline; a click on the last one selects
    // its row and scrolls it into view.
    let drawn = browser.eval("document.querySelectorAll('#timeline-view rect[data-stall]').length");
    assert_eq!(drawn, stalls.len());
    browser.eval("document.getElementById('timeline').scrollIntoView()");
    let last = stalls.len() - 1;
    let (x, y) = stall_on_timeline(&mut browser, last);
    browser.hover(x, y);
    let tip = browser.eval("document.getElementById('timeline-tip').innerText");
    let cause = stalls[last]["cause"]["description"].as_str().unwrap();
    assert!(
        tip.as_str().unwrap().contains(cause),
        "{tip} lacks {cause:?}"
    );
    browser.screenshot(&browser::screenshot_path("2-timeline"));

    // The wheel zooms in around the pointer: the stall gets wider and the
    // first one leaves the view; "Reset zoom" shows all again.
    let width = |browser: &mut Browser| {
        browser.eval(&format!(
            "document.querySelector('#timeline-view rect[data-stall=\"{last}\"]').getBoundingClientRect().width"
        ))
        .as_f64()
        .unwrap()
    };
    let before = width(&mut browser);
    browser.wheel(x, y, -1500.0);
    // The browser hands wheel events to the page asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = width(&mut browser);
    while after <= 3.0 * before && Instant::now() < deadline {
        after = width(&mut browser);
    }
    assert!(
        after > 3.0 * before,
        "no zoom: {before} px, then {after} px"
    );
    let drawn_zoomed =
        browser.eval("document.querySelectorAll('#timeline-view rect[data-stall]').length");
    assert!(
        drawn_zoomed.as_u64().unwrap() < stalls.len() as u64,
        "{drawn_zoomed}"
    );
    browser.screenshot(&browser::screenshot_path("3-timeline-zoomed"));
    browser.eval("document.getElementById('timeline-reset').click()");
    assert!((width(&mut browser) - before).abs() < 1.0);

    let (x, y) = stall_on_timeline(&mut browser, last);
    browser.click(x, y);
    let selected = browser.eval(
        "(() => { const rows = [...document.querySelectorAll('tr.selected')];
           const r = rows[0]?.getBoundingClientRect();
           return [rows.map((row) => row.id), r && r.top >= 0 && r.bottom <= innerHeight]; })()",
    );
    assert_eq!(
        selected,
        serde_json::json!([[format!("stall-{last}")], true])
    );
    browser.screenshot(&browser::screenshot_path("4-stall-selected"));

    // The CPU flame graph is inferno's, alive: a click on a frame zooms.
    browser.eval("document.getElementById('cpu').scrollIntoView()");
    flame_graph_loads(&mut browser, "cpu");
    let frame = browser.eval(
        "(() => { const doc = document.querySelector('#cpu iframe').contentDocument;
           const box = document.querySelector('#cpu iframe').getBoundingClientRect();
           const g = [...doc.querySelectorAll('#frames > g')].find((g) => {
             const r = g.getBoundingClientRect(); return r.width > 40 && r.top > 60 && box.top + r.bottom < innerHeight; });
           const r = g.getBoundingClientRect();
           return [box.left + r.left + r.width / 2, box.top + r.top + r.height / 2]; })()",
    );
    browser.click(frame[0].as_f64().unwrap(), frame[1].as_f64().unwrap());
    let zoomed = browser.eval(
        "!document.querySelector('#cpu iframe').contentDocument.getElementById('unzoom').classList.contains('hide')",
    );
    assert_eq!(zoomed, true, "the flame graph did not zoom");
    // inferno draws the zoomed frame at the root's place, the bottom.
    browser.eval("document.querySelector('#cpu iframe').scrollIntoView({block: 'end'})");
    browser.screenshot(&browser::screenshot_path("5-cpu-flame-graph"));
    browser.eval("document.getElementById('syscalls').scrollIntoView()");
    browser.screenshot(&browser::screenshot_path("6-tables"));

    assert_eq!(browser.errors(), Vec::<String>::new());
    let remote: Vec<String> = browser
        .requests()
        .into_iter()
        .filter(|url| !url.starts_with("file:") && !url.starts_with("about:"))
        .collect();
    assert_eq!(remote, Vec::<String>::new(), "the page fetched something");
}

/// A minute of a busy service (two event loops, thousands of requests a
/// second, a stall every 200 ms, a thread pool): its page stays under
/// 5 MB, holds every stall, draws them all and opens without an error; the
/// times it takes to open (load, unpack, draw) and to show the CPU flame
/// graph once scrolled to are printed.
#[test]
fn busy_service_report_html_stays_small() {
    require_root!("busy_service_report_html_stays_small");
    if !browser::available("busy_service_report_html_stays_small") {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/busy_service.py");
    let seconds = BUSY_SECONDS.to_string();
    let mut target = Target::start(Command::new(pyenv_python("3.11")).args([script, &seconds]));
    let tracer = Tracer::attach(target.pid, &["--output", out.path().to_str().unwrap()]);
    target.go();
    let served = target
        .stdout
        .wait_for("requests", Duration::from_secs(BUSY_SECONDS + 60));
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let planted: usize = served.split_whitespace().nth(3).unwrap().parse().unwrap();
    let page = out.path().join("report.html");
    let size = std::fs::metadata(&page).unwrap().len();
    let stalls = done.report["stalls"].as_array().unwrap().len();
    // The target counts the stalls it planted that took 12 ms or more.
    assert!(stalls >= planted, "{stalls} stalls of {planted} planted");

    let mut browser = Browser::start();
    let start = Instant::now();
    let ready = open_report(&mut browser, &page);
    let opened = start.elapsed();
    let drawn = browser.eval("document.querySelectorAll('#timeline-view rect[data-stall]').length");
    let rows = browser.eval("document.querySelectorAll('tr[id^=stall-]').length");
    eprintln!(
        "busy service, {BUSY_SECONDS} s ({}): report.html {size} bytes, {stalls} stalls; \
         opened in {} ms (ready at {ready:.0} ms by the page's clock)",
        served.trim(),
        opened.as_millis()
    );
    browser.screenshot(&browser::screenshot_path("busy-1-first-screen"));
    browser.eval("document.getElementById('timeline').scrollIntoView()");
    browser.screenshot(&browser::screenshot_path("busy-2-timeline"));
    browser.eval("document.getElementById('cpu').scrollIntoView()");
    let flame = flame_graph_loads(&mut browser, "cpu");
    eprintln!(
        "its CPU flame graph loaded {} ms after scrolled to",
        flame.as_millis()
    );
    browser.screenshot(&browser::screenshot_path("busy-3-cpu-flame-graph"));
    assert!(size < MAX_BUSY_PAGE_BYTES, "report.html is {size} bytes");
    assert_eq!((drawn, rows), (stalls.into(), stalls.into()));
    assert_eq!(browser.errors(), Vec::<String>::new());
}

/// Opens report.html and waits until its script has unpacked the data and
/// drawn the timeline; when that was by the page's clock (ms since it was
/// asked for).
fn open_report(browser: &mut Browser, page: &Path) -> f64 {
    browser.open(page);
    browser
        .eval("reportReady.then(() => performance.getEntriesByName('report-ready')[0].startTime)")
        .as_f64()
        .expect("report-ready")
}

/// Waits until the flame graph of section `id` (given to its frame when
/// scrolled near) has loaded; how long that took.
fn flame_graph_loads(browser: &mut Browser, id: &str) -> Duration {
    let start = Instant::now();
    let loaded = format!(
        "document.querySelector('#{id} iframe').contentDocument?.getElementById('frames') != null"
    );
    while browser.eval(&loaded) != true {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {id} flame graph"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

/// The middle of stall `index` on the timeline, in viewport pixels.
fn stall_on_timeline(browser: &mut Browser, index: usize) -> (f64, f64) {
    let point = browser.eval(&format!(
        "(() => {{ const r = document.querySelector('#timeline-view rect[data-stall=\"{index}\"]').getBoundingClientRect();
           return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
    ));
    (point[0].as_f64().unwrap(), point[1].as_f64().unwrap())
}

/// `tracer report REC --html FILE` renders the live trace's page again, byte
/// for byte; a file it cannot write is one error line and exit status 1.
fn same_page_from_the_recording(recording: &Path, live: &Path) {
    let again = recording.with_file_name("again.html");
    let output = Command::new(tracer_bin())
        .args(["report", "-q", "--html"])
        .args([&again, recording])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        std::fs::read(&again).unwrap() == std::fs::read(live).unwrap(),
        "tracer report --html made another page"
    );
    let output = Command::new(tracer_bin())
        .args(["report", "--html", "/nonexistent/dir/r.html"])
        .arg(recording)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/dir/r.html"), "{stderr}");
}

/// `function file:line` of the innermost Python frame, as the page shows
/// it (the last two components of the path).
fn python_frame(stack: &Value) -> Option<String> {
    let frame = stack.as_array()?.iter().find(|f| f["kind"] == "python")?;
    let file = frame["file"].as_str()?;
    let mut short: Vec<&str> = file.rsplit('/').take(2).collect();
    short.reverse();
    Some(format!(
        "{} {}:{}",
        frame["function"].as_str()?,
        short.join("/"),
        frame["line"]
    ))
}
