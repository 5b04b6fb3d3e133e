//! The live screen: terminal set-up and restore, and the one event loop that multiplexes keys,
//! trainer events, signals and a redraw tick.

pub mod app;
pub mod keys;
pub mod run_view;
pub mod theme;
pub mod view;

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, never, select, tick, unbounded};
use crossterm::event::Event as TermEvent;

use crate::protocol::{Command, Event};
use app::{Action, App, Message, update};
use theme::Theme;

/// At most ~15 frames a second, and only when something changed.
const FRAME: Duration = Duration::from_millis(66);

/// Restores the terminal when dropped, so every exit path (error, early return) leaves it clean.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Shows the run live until the user quits; returns the final state.
pub fn run(
    events: Receiver<Event>,
    commands: Sender<Command>,
    theme: Theme,
) -> anyhow::Result<App> {
    // try_init also installs a panic hook that restores the terminal before the message prints.
    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    let mut keys = spawn_input_reader();
    let signals = spawn_signal_listener();
    let ticker = tick(FRAME);
    let mut trainer = events;
    let mut app = App::new();
    let mut dirty = true;
    let mut screen_ok = true;

    while !app.should_quit {
        let mut messages = Vec::new();
        select! {
            recv(keys) -> key => match key {
                Ok(TermEvent::Key(key)) => {
                    if let Some(action) = keys::action_for(&app.mode, key) {
                        messages.push(Message::Action(action));
                    }
                }
                Ok(TermEvent::Resize(..)) => dirty = true,
                Ok(_) => {}
                // The terminal is gone (e.g. SSH dropped); stop the run rather than train blind.
                Err(_) => {
                    keys = never();
                    messages.push(Message::Action(Action::Interrupt));
                }
            },
            recv(trainer) -> event => match event {
                Ok(event) => {
                    messages.push(Message::Trainer(event));
                    // Take everything already waiting: a fast trainer is drawn once per frame.
                    messages.extend(trainer.try_iter().map(Message::Trainer));
                }
                Err(_) => {
                    trainer = never();
                    messages.push(Message::TrainerGone);
                }
            },
            recv(signals) -> _ => messages.push(Message::Action(Action::Interrupt)),
            recv(ticker) -> _ => {
                if dirty && screen_ok {
                    screen_ok = terminal.draw(|frame| view::draw(frame, &app, &theme)).is_ok();
                    dirty = false;
                }
            },
        }
        for message in messages {
            dirty = true;
            for command in update(&mut app, message) {
                // A trainer that has ended needs no more commands.
                let _ = commands.send(command);
            }
        }
    }
    Ok(app)
}

fn spawn_input_reader() -> Receiver<TermEvent> {
    let (sender, receiver) = unbounded();
    let _ = std::thread::Builder::new()
        .name("kiln-input".into())
        .spawn(move || {
            while let Ok(event) = crossterm::event::read() {
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
    receiver
}

/// SIGTERM, SIGHUP and SIGINT all mean: stop the run cleanly and quit.
fn spawn_signal_listener() -> Receiver<i32> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (sender, receiver) = unbounded();
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT]) {
        let _ = std::thread::Builder::new()
            .name("kiln-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if sender.send(signal).is_err() {
                        break;
                    }
                }
            });
    }
    receiver
}
