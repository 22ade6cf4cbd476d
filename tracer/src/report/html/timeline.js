// report.html's script: unpacks the page's data (gzip'd JSON in base64:
// the report, timeline.json's drawn events, the stacks of the rows, the
// flame graphs), draws the timeline (one SVG, redrawn on zoom and pan),
// links its stalls to the rows of "Every stall", fills a row's stack and
// the JSON view when opened, and gives the flame graphs to their frames.
// window.reportReady resolves once the data is unpacked and the timeline
// drawn (and the performance mark "report-ready" is set); a flame graph
// loads when scrolled near.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const GUTTER = 170; // px of labels left of the tracks
  const AXIS = 22; // px of the time axis on top
  const LANE = { lag: 12, stalls: 22, calls: 14, waits: 14, gap: 10 };

  async function unpack() {
    const text = document.getElementById("page-data").textContent.trim();
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).json();
  }

  window.reportReady = unpack().then(start).then(() => { performance.mark("report-ready"); });

  function start(data) {
    const report = data.report;
    const events = data.timeline;
    const view = document.getElementById("timeline-view");
    const tip = document.getElementById("timeline-tip");
    const end = Math.max(report.duration_ns / 1e3, 1); // µs, as timeline.json
    let range = [0, end];
    let selected = null;
    let tips = []; // what each drawn span's data-tip (an index) shows on hover

    // --- the data, in microseconds -----------------------------------------

    const loopTids = report.loops.map((l) => l.tid);
    const names = new Map();
    for (const e of events) {
      if (e.ph === "M" && e.name === "thread_name") names.set(e.tid, e.args.name);
    }
    const threadComm = (tid) => {
      const t = report.threads.find((t) => t.tid === tid);
      return t ? t.comm : "thread";
    };

    function busyStrip(tid) {
      const points = events
        .filter((e) => e.ph === "C" && e.name === "loop " + tid + " busy")
        .sort((a, b) => a.ts - b.ts);
      return points.map((p, i) => ({
        t0: p.ts,
        t1: i + 1 < points.length ? points[i + 1].ts : end,
        busy: p.args["%"],
      }));
    }

    function stallSpans(tid) {
      const spans = [];
      report.stalls.forEach((s, index) => {
        if (s.tid !== tid) return;
        const cause = s.cause;
        const code = (cause.stack || []).filter((f) => f.kind === "python").concat(
          (cause.stack || []).filter((f) => f.kind !== "python")).slice(0, 6);
        spans.push({
          t0: s.start_ns / 1e3,
          t1: (s.start_ns + s.duration_ns) / 1e3,
          cls: "kind-" + cause.kind,
          index: index,
          title: "Stall " + (index + 1) + ": " + fmt(s.duration_ns / 1e3),
          lines: [cause.description,
            "on CPU " + fmt(s.on_cpu_ns / 1e3) + ", blocked " + fmt(s.blocked_ns / 1e3) +
            ", run queue " + fmt(s.runqueue_ns / 1e3)]
            .concat(cause.task ? ["task " + cause.task.name + " (" + cause.task.coro + ")"] : []),
          code: code.map(frameText),
        });
      });
      return spans;
    }

    function callSpans(tid, cat, cls) {
      return events
        .filter((e) => e.ph === "X" && e.cat === cat && e.tid === tid)
        .map((e) => ({
          t0: e.ts,
          t1: e.ts + e.dur,
          cls: cls,
          title: e.name + ": " + fmt(e.dur),
          lines: Object.keys(e.args).filter((k) => k !== "code")
            .map((k) => k + " " + e.args[k]),
          code: e.args.code || [],
        }));
    }

    // Loop threads first (lag strip, stalls, calls, waits), then the other
    // threads that made blocking calls or waited.
    const rows = [];
    for (const tid of loopTids) {
      rows.push({ label: threadComm(tid) + " " + tid, sub: "event loop", lanes: [
        { kind: "lag", name: "busy", cells: busyStrip(tid) },
        { kind: "stalls", name: "stalls", spans: stallSpans(tid) },
        { kind: "calls", name: "calls", spans: callSpans(tid, "syscall", "call") },
        { kind: "waits", name: "off-CPU", spans: callSpans(tid, "off_cpu", "wait") },
      ] });
    }
    for (const [tid, name] of names) {
      if (loopTids.includes(tid)) continue;
      const calls = callSpans(tid, "syscall", "call");
      const waits = callSpans(tid, "off_cpu", "wait");
      if (calls.length + waits.length === 0) continue;
      rows.push({ label: name + " " + tid, sub: "", lanes: [
        { kind: "calls", name: "calls", spans: calls },
        { kind: "waits", name: "off-CPU", spans: waits },
      ] });
    }

    // --- formatting -------------------------------------------------------

    function fmt(us) {
      if (us === 0) return "0";
      if (us >= 1e6) return (us / 1e6).toPrecision(3) + " s";
      if (us >= 1e3) return (us / 1e3).toPrecision(3) + " ms";
      return us.toPrecision(3) + " us";
    }

    function frameText(f) {
      const place = f.file ? " (" + f.file.split("/").slice(-2).join("/") +
        (f.line ? ":" + f.line : "") + (f.line && f.column ? ":" + f.column : "") +
        ")" : "";
      return f.function + place;
    }

    // --- drawing ------------------------------------------------------------

    function el(name, attrs, parent) {
      const node = document.createElementNS(SVG, name);
      for (const k in attrs) node.setAttribute(k, attrs[k]);
      if (parent) parent.appendChild(node);
      return node;
    }

    function lagColour(busy) {
      // Green (idle) to red (busy the whole window).
      const hue = 120 - Math.min(busy, 100) * 1.2;
      return "hsl(" + hue + ", 70%, " + (busy < 1 ? 94 : 55) + "%)";
    }

    function ticks(width) {
      const span = range[1] - range[0];
      const raw = span / Math.max(width / 110, 1);
      const pow = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw);
      const out = [];
      for (let t = Math.ceil(range[0] / step) * step; t <= range[1]; t += step) out.push(t);
      return out;
    }

    function draw() {
      tips = [];
      const width = view.clientWidth;
      const plot = width - GUTTER;
      const x = (t) => GUTTER + ((t - range[0]) / (range[1] - range[0])) * plot;
      let height = AXIS;
      for (const row of rows) {
        height += row.lanes.reduce((h, l) => h + LANE[l.kind], 0) + LANE.gap;
      }
      const svg = el("svg", { width: width, height: Math.max(height, AXIS + 30) });
      const axis = el("g", { class: "axis" }, svg);
      for (const t of ticks(plot)) {
        el("line", { x1: x(t), x2: x(t), y1: AXIS - 4, y2: height }, axis);
        el("text", { x: x(t) + 3, y: 12 }, axis).textContent = fmt(t).replace(/\.0+ /, " ");
      }
      let y = AXIS;
      if (rows.length === 0) {
        el("text", { x: 12, y: AXIS + 18 }, svg).textContent =
          "No event loop, blocking call or off-CPU wait to show.";
      }
      for (const row of rows) {
        el("text", { x: 8, y: y + 11, class: "label" }, svg).textContent = row.label;
        el("text", { x: 8, y: y + 24, class: "sublabel" }, svg).textContent = row.sub;
        for (const lane of row.lanes) {
          const h = LANE[lane.kind];
          el("text", { x: GUTTER - 6, y: y + h - 3, "text-anchor": "end", class: "sublabel" }, svg)
            .textContent = lane.name;
          const group = el("g", {}, svg);
          if (lane.cells) {
            for (const c of lane.cells) {
              if (c.t1 < range[0] || c.t0 > range[1]) continue;
              const x0 = Math.max(x(c.t0), GUTTER);
              const r = el("rect", { x: x0, y: y + 1, width: Math.max(Math.min(x(c.t1), width) - x0, 0.5),
                height: h - 2, fill: lagColour(c.busy) }, group);
              r.dataset.tip = tips.push({ title: "busy " + c.busy + " %", lines: [fmt(c.t0) + " – " + fmt(c.t1)], code: [] }) - 1;
            }
          }
          for (const s of lane.spans || []) {
            if (s.t1 < range[0] || s.t0 > range[1]) continue;
            const x0 = Math.max(x(s.t0), GUTTER);
            const w = Math.max(Math.min(x(s.t1), width) - x0, 2);
            const cls = "span " + s.cls + (s.index !== undefined && s.index === selected ? " selected" : "");
            const r = el("rect", { x: x0, y: y + 1, width: w, height: h - 2, rx: 2, class: cls }, group);
            r.dataset.tip = tips.push(s) - 1;
            if (s.index !== undefined) {
              r.dataset.stall = s.index;
              if (w > 60) {
                el("text", { x: x0 + 4, y: y + h - 7, class: "inside" }, group).textContent =
                  s.title.slice(0, Math.floor(w / 6.5));
              }
            }
          }
          y += h;
        }
        y += LANE.gap;
      }
      view.replaceChildren(svg);
    }

    // --- interaction ---------------------------------------------------------

    function timeAt(clientX) {
      const box = view.getBoundingClientRect();
      const frac = (clientX - box.left - GUTTER) / (box.width - GUTTER);
      return range[0] + Math.min(Math.max(frac, 0), 1) * (range[1] - range[0]);
    }

    function setRange(t0, t1) {
      const span = Math.min(Math.max(t1 - t0, 10), end); // at least 10 µs
      const start = Math.min(Math.max(t0, 0), end - span);
      range = [start, start + span];
      draw();
    }

    view.addEventListener("wheel", (e) => {
      e.preventDefault();
      const t = timeAt(e.clientX);
      const k = Math.pow(1.0015, e.deltaY);
      setRange(t - (t - range[0]) * k, t + (range[1] - t) * k);
    }, { passive: false });

    let drag = null;
    view.addEventListener("mousedown", (e) => {
      drag = { x: e.clientX, range: range.slice(), moved: false };
      view.classList.add("dragging");
    });
    window.addEventListener("mousemove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          const per = (drag.range[1] - drag.range[0]) / (view.clientWidth - GUTTER);
          setRange(drag.range[0] - dx * per, drag.range[1] - dx * per);
        }
      }
      showTip(e);
    });
    window.addEventListener("mouseup", () => {
      view.classList.remove("dragging");
      setTimeout(() => { drag = null; }, 0);
    });

    function showTip(e) {
      const tipIndex = e.target.dataset && e.target.dataset.tip;
      if (tipIndex === undefined || (drag && drag.moved)) {
        tip.hidden = true;
        return;
      }
      const s = tips[Number(tipIndex)];
      tip.replaceChildren();
      const title = document.createElement("b");
      title.textContent = s.title;
      tip.appendChild(title);
      for (const line of s.lines) tip.appendChild(document.createElement("div")).textContent = line;
      if (s.code.length) tip.appendChild(document.createElement("div")).textContent = "";
      const code = tip.appendChild(document.createElement("div"));
      code.className = "code";
      code.textContent = s.code.join("\n");
      tip.hidden = false;
      const left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      const top = e.clientY + 16 + tip.offsetHeight > window.innerHeight ? e.clientY - tip.offsetHeight - 10 : e.clientY + 16;
      tip.style.left = left + "px";
      tip.style.top = top + "px";
    }

    // A click on a stall selects its row in "Every stall".
    view.addEventListener("click", (e) => {
      if (drag && drag.moved) return;
      const index = e.target.dataset && e.target.dataset.stall;
      if (index === undefined) return;
      selectStall(Number(index));
    });

    function selectStall(index) {
      selected = index;
      draw();
      for (const row of document.querySelectorAll("tr.selected")) row.classList.remove("selected");
      const row = document.getElementById("stall-" + index);
      if (!row) return;
      row.classList.add("selected", "flash");
      setTimeout(() => row.classList.remove("flash"), 1300);
      row.scrollIntoView({ block: "center" });
    }

    // A click on a stall's row (outside its stack) shows it on the timeline.
    for (const row of document.querySelectorAll("tr[id^=stall-]")) {
      row.addEventListener("click", (e) => {
        if (e.target.closest("details")) return;
        const s = report.stalls[Number(row.id.slice(6))];
        const pad = Math.max(s.duration_ns / 1e3, 1000) * 2;
        selected = Number(row.id.slice(6));
        setRange(s.start_ns / 1e3 - pad, (s.start_ns + s.duration_ns) / 1e3 + pad);
        view.scrollIntoView({ block: "center" });
      });
    }

    document.getElementById("timeline-reset").addEventListener("click", () => setRange(0, end));
    window.addEventListener("resize", draw);
    view.addEventListener("mouseleave", () => { tip.hidden = true; });

    // The JSON report, pretty-printed when first opened.
    const details = document.getElementById("json-details");
    details.addEventListener("toggle", () => {
      const pre = document.getElementById("json-text");
      if (details.open && !pre.textContent) pre.textContent = JSON.stringify(report, null, 2);
    });

    // A row's stack (HTML made by tracer, names escaped), when first opened.
    for (const code of document.querySelectorAll("details[data-stack]")) {
      code.addEventListener("toggle", () => {
        if (code.open && code.children.length === 1) {
          code.insertAdjacentHTML("beforeend", data.stacks[Number(code.dataset.stack)]);
        }
      });
    }

    // A busy trace keeps its first blocking calls one by one, then counts.
    if (report.blocking_omitted > 0) {
      const note = document.getElementById("timeline-note");
      note.textContent = "Blocking calls after the first " + report.blocking.length +
        " were counted, not kept one by one: " + report.blocking_omitted +
        " more are in the tables below, not on the timeline.";
      note.hidden = false;
    }

    draw();

    // The flame graphs, each given to its frame when it comes near the
    // view: a busy trace's SVG is a megabyte the first screen does not need.
    const near = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        near.unobserve(entry.target);
        entry.target.srcdoc = data.flames[entry.target.dataset.flame];
      }
    }, { rootMargin: "400px" });
    for (const frame of document.querySelectorAll("iframe[data-flame]")) near.observe(frame);
  }
})();
