//! Draws a [`Screen`] with ratatui: a title line, the loops, the last
//! stalls, the blocking call sites beside the hottest functions, a footer.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Cell, Paragraph, Row, Table},
};

use super::screen::{LoopLine, Screen};
use crate::duration::format_ns;

/// The loop table's order, cycled with `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Busy,
    P99,
    Max,
    Rate,
}

impl Sort {
    pub fn next(self) -> Self {
        match self {
            Sort::Busy => Sort::P99,
            Sort::P99 => Sort::Max,
            Sort::Max => Sort::Rate,
            Sort::Rate => Sort::Busy,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sort::Busy => "busy",
            Sort::P99 => "p99 lag",
            Sort::Max => "max lag",
            Sort::Rate => "iterations/s",
        }
    }

    pub fn order(self, loops: &mut [LoopLine]) {
        let key = |l: &LoopLine| match self {
            Sort::Busy => l.busy,
            Sort::P99 => l.p99_ns as f64,
            Sort::Max => l.max_ns as f64,
            Sort::Rate => l.per_second,
        };
        loops.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.tid.cmp(&b.tid)));
    }
}

/// What the keys changed.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    pub sort: Sort,
    pub paused: bool,
}

const HEADER: Style = Style::new().add_modifier(Modifier::BOLD);

pub fn draw(frame: &mut Frame, screen: &Screen, view: View) {
    let loop_rows = screen.loops.len().clamp(1, 8) as u16;
    let [title, loops, stalls, bottom, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(loop_rows + 3),
        Constraint::Min(6),
        Constraint::Length(13),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(title_line(screen, view), title);
    draw_loops(frame, loops, screen, view);
    draw_stalls(frame, stalls, screen);
    let [sites, hot] =
        Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)]).areas(bottom);
    draw_sites(frame, sites, screen);
    draw_hot(frame, hot, screen);
    frame.render_widget(footer_line(screen, view), footer);
}

fn title_line(screen: &Screen, view: View) -> Paragraph<'static> {
    let mut spans = vec![
        Span::styled(" tracer top ", Style::new().reversed().bold()),
        Span::raw(format!(
            "  {}  ·  {:.0} s  ·  stalls {}  ·  events {}  ·  dropped {}",
            screen.target,
            screen.elapsed_ns as f64 / 1e9,
            screen.stalls_total,
            screen.events,
            screen.dropped
        )),
    ];
    if view.paused {
        spans.push(Span::styled(
            "  PAUSED",
            Style::new().fg(Color::Yellow).bold(),
        ));
    }
    Paragraph::new(Line::from(spans))
}

fn footer_line(screen: &Screen, view: View) -> Paragraph<'static> {
    let keys = format!(
        " s sort ({})   p/space {}   q quit",
        view.sort.name(),
        if view.paused { "resume" } else { "pause" }
    );
    let mut spans = vec![Span::styled(keys, Style::new().dim())];
    if let Some(note) = &screen.note {
        spans.push(Span::styled(
            format!("   {note}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    Paragraph::new(Line::from(spans))
}

fn window(screen: &Screen) -> String {
    format!("last {:.0} s", screen.window_ns as f64 / 1e9)
}

fn draw_loops(frame: &mut Frame, area: Rect, screen: &Screen, view: View) {
    let mut loops = screen.loops.clone();
    view.sort.order(&mut loops);
    let rows = loops.iter().map(|l| {
        let busy = Span::styled(
            format!("{:5.1} %", l.busy * 100.0),
            if l.busy >= 0.5 {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            },
        );
        Row::new(vec![
            Cell::from(format!("{} {}", l.tid, l.comm)),
            Cell::from(format!("{:10.1}", l.per_second)),
            Cell::from(busy),
            Cell::from(format_ns(l.p50_ns)),
            Cell::from(format_ns(l.p99_ns)),
            Cell::from(format_ns(l.max_ns)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(24),
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(10),
        ],
    )
    .header(
        Row::new([
            "THREAD",
            "ITERATIONS/S",
            "BUSY",
            "LAG P50",
            "LAG P99",
            "LAG MAX",
        ])
        .style(HEADER),
    )
    .block(Block::bordered().title(format!(
        " Event loops ({}, by {}) ",
        window(screen),
        view.sort.name()
    )));
    frame.render_widget(table, area);
}

fn kind_style(kind: &str) -> Style {
    match kind {
        "syscall" => Style::new().fg(Color::Yellow),
        "cpu" => Style::new().fg(Color::Red),
        "gil" => Style::new().fg(Color::Magenta),
        "runqueue" => Style::new().fg(Color::Blue),
        _ => Style::new().fg(Color::Cyan),
    }
}

fn draw_stalls(frame: &mut Frame, area: Rect, screen: &Screen) {
    let rows = screen.stalls.iter().map(|s| {
        Row::new(vec![
            Cell::from(format!("{:7.1} s", s.start_ns as f64 / 1e9)),
            Cell::from(format!("{} {}", s.tid, s.comm)),
            Cell::from(format_ns(s.duration_ns)),
            Cell::from(Span::styled(s.kind, kind_style(s.kind))),
            Cell::from(s.cause.clone()),
            Cell::from(Span::styled(s.code.clone(), Style::new().fg(Color::Green))),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["AT", "THREAD", "LENGTH", "CAUSE", "", "CODE"]).style(HEADER))
    .block(Block::bordered().title(" Last stalls (newest first) "));
    frame.render_widget(table, area);
}

fn draw_sites(frame: &mut Frame, area: Rect, screen: &Screen) {
    let rows = screen.blocking.iter().map(|s| {
        Row::new(vec![
            Cell::from(s.call.clone()),
            Cell::from(format!("{:6}", s.count)),
            Cell::from(format_ns(s.total_ns)),
            Cell::from(format_ns(s.max_ns)),
            Cell::from(Span::styled(s.code.clone(), Style::new().fg(Color::Green))),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["CALL", "COUNT", "TOTAL", "MAX", "CODE"]).style(HEADER))
    .block(Block::bordered().title(format!(" Blocking call sites ({}) ", window(screen))));
    frame.render_widget(table, area);
}

fn draw_hot(frame: &mut Frame, area: Rect, screen: &Screen) {
    let rows = screen.hot.iter().map(|h| {
        Row::new(vec![
            Cell::from(format!("{:5.1} %", h.self_share * 100.0)),
            Cell::from(format!("{:5.1} %", h.total_share * 100.0)),
            Cell::from(h.function.clone()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["SELF", "TOTAL", "FUNCTION"]).style(HEADER))
    .block(Block::bordered().title(format!(" Hottest functions ({}) ", window(screen))));
    frame.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::screen::{HotLine, SiteLine, StallLine};
    use ratatui::{Terminal, backend::TestBackend};

    fn screen() -> Screen {
        let line = |tid, busy, p99_ns| LoopLine {
            tid,
            comm: "python3".into(),
            per_second: 120.0,
            busy,
            p50_ns: 100_000,
            p99_ns,
            max_ns: 150_000_000,
        };
        Screen {
            target: "pid 4242 (python3)".into(),
            elapsed_ns: 12_000_000_000,
            window_ns: 10_000_000_000,
            stalls_total: 3,
            dropped: 0,
            events: 120,
            loops: vec![line(4242, 0.25, 150_000_000), line(4250, 0.75, 1_000_000)],
            stalls: vec![StallLine {
                tid: 4242,
                comm: "python3".into(),
                start_ns: 11_500_000_000,
                duration_ns: 150_000_000,
                kind: "syscall",
                cause: "blocked 150 ms in clock_nanosleep".into(),
                code: "stall (targets/planted_stalls.py:25)".into(),
            }],
            blocking: vec![SiteLine {
                call: "clock_nanosleep".into(),
                count: 3,
                total_ns: 450_000_000,
                max_ns: 150_000_000,
                code: "stall (targets/planted_stalls.py:25)".into(),
            }],
            hot: vec![HotLine {
                function: "crunch (app.py)".into(),
                self_share: 0.5,
                total_share: 0.75,
            }],
            note: None,
        }
    }

    fn text(screen: &Screen, view: View) -> String {
        text_of_size(screen, view, 160, 48)
    }

    fn text_of_size(screen: &Screen, view: View, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal
            .draw(|frame| draw(frame, screen, view))
            .expect("draw");
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn shows_every_part() {
        let shown = text(&screen(), View::default());
        for part in [
            "pid 4242 (python3)",
            "stalls 3",
            "Event loops (last 10 s, by busy)",
            "150 ms",
            "blocked 150 ms in clock_nanosleep",
            "stall (targets/planted_stalls.py:25)",
            "Blocking call sites",
            "crunch (app.py)",
            " 50.0 %",
            "q quit",
        ] {
            assert!(shown.contains(part), "{part:?} not on the screen:\n{shown}");
        }
    }

    #[test]
    fn small_terminals_get_what_fits() {
        let small = text_of_size(&screen(), View::default(), 80, 24);
        assert!(small.contains("pid 4242"), "{small}");
        assert!(small.contains("blocked 150 ms"), "{small}");
        // Tiny: drawn without a panic.
        text_of_size(&screen(), View::default(), 20, 5);
    }

    #[test]
    fn sort_and_pause_change_the_screen() {
        let busy = text(&screen(), View::default());
        // By busy share: 4250 (75 %) first.
        assert!(busy.find("4250 python3") < busy.find("4242 python3"));
        let view = View {
            sort: Sort::Busy.next(),
            paused: true,
        };
        let p99 = text(&screen(), view);
        assert!(p99.contains("by p99 lag"));
        assert!(p99.contains("PAUSED"));
        let table = &p99[p99.find("Event loops").expect("loops")..];
        assert!(table.find("4242 python3") < table.find("4250 python3"));
    }
}
