//! The terminal thread of `tracer top`: it takes the terminal (raw mode,
//! alternate screen, a panic hook that gives it back), draws each screen
//! the recording thread sends, and reads the keys. It gives the terminal
//! back when the user quits, when the recording ends (the channel closes)
//! and when drawing fails.

use std::{
    sync::mpsc::{Receiver, TryRecvError},
    time::Duration,
};

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::UnboundedSender;

use super::{
    render::{View, draw},
    screen::Screen,
};

/// How long a key is waited for before looking for a new screen.
const KEY_POLL: Duration = Duration::from_millis(100);

/// Runs until the user quits or `screens` closes; why the user quit goes
/// to `quit`.
pub fn run(screens: Receiver<Screen>, quit: UnboundedSender<String>) {
    let result = ratatui::try_init().and_then(|mut terminal| show(&mut terminal, &screens));
    ratatui::restore();
    match result {
        Ok(Some(why)) => {
            let _ = quit.send(why);
        }
        Ok(None) => {}
        Err(error) => {
            let _ = quit.send(format!("the terminal failed ({error})"));
        }
    }
}

/// Some(why) when the user quit, None when the recording ended.
fn show(
    terminal: &mut DefaultTerminal,
    screens: &Receiver<Screen>,
) -> std::io::Result<Option<String>> {
    let mut view = View::default();
    let mut shown = Screen {
        target: "attached; first figures in a second".into(),
        ..Screen::default()
    };
    // The newest screen that came while paused.
    let mut held: Option<Screen> = None;
    let mut dirty = true;
    loop {
        loop {
            match screens.try_recv() {
                Ok(screen) if view.paused => held = Some(screen),
                Ok(screen) => {
                    shown = screen;
                    dirty = true;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(None),
            }
        }
        if dirty {
            terminal.draw(|frame| draw(frame, &shown, view))?;
            dirty = false;
        }
        if !event::poll(KEY_POLL)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) if key.kind == KeyEventKind::Press => {
                match (key.code, key.modifiers.contains(KeyModifiers::CONTROL)) {
                    (KeyCode::Char('c'), true) => {
                        return Ok(Some("interrupted (Ctrl-C)".to_string()));
                    }
                    (KeyCode::Char('q' | 'Q') | KeyCode::Esc, _) => {
                        return Ok(Some("quit (q)".to_string()));
                    }
                    (KeyCode::Char('s'), false) => view.sort = view.sort.next(),
                    (KeyCode::Char('p' | ' '), false) => {
                        view.paused = !view.paused;
                        if let Some(screen) = held.take().filter(|_| !view.paused) {
                            shown = screen;
                        }
                    }
                    _ => {}
                }
                dirty = true;
            }
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
}
