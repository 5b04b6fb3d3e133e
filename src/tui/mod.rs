//! The live screen: terminal set-up and restore, and the one event loop that multiplexes keys,
//! trainer events, signals and a redraw tick.

pub mod app;
pub mod browser;
pub mod keys;
pub mod run_view;
pub mod theme;
pub mod view;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, select, tick, unbounded};
use crossterm::event::Event as TermEvent;

use crate::protocol::{Command, Event};
use app::{Action, App, Message, update};
use browser::{Browser, Outcome};
use theme::Theme;

/// At most ~15 frames a second, and only when something changed.
const FRAME: Duration = Duration::from_millis(66);

/// Restores the terminal when dropped, so every exit path (error, early return) leaves it clean.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        // Not `ratatui::restore`, which prints (and so panics) when the terminal is gone.
        let _ = ratatui::try_restore();
    }
}

/// A listed run still training elsewhere is re-read this often while the browser shows it.
const REFRESH: Duration = Duration::from_secs(2);

/// Shows `app` until the user quits; returns the final state. `events` and `commands` connect
/// a live run (use `never()` and a dropped channel for none); `runs_dir` is where the browser
/// looks. An app that starts with its browser open quits when the browser closes.
pub fn run(
    mut app: App,
    events: Receiver<Event>,
    commands: Sender<Command>,
    theme: Theme,
    runs_dir: PathBuf,
) -> anyhow::Result<App> {
    // try_init also installs a panic hook that restores the terminal before the message prints.
    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    let mut keys = spawn_input_reader();
    let signals = spawn_signal_listener();
    let ticker = tick(FRAME);
    let mut trainer = events;
    let standalone = app.browser.is_some();
    let mut refreshed = Instant::now();
    let mut dirty = true;
    let mut screen_ok = true;

    while !app.should_quit {
        let mut messages = Vec::new();
        select! {
            recv(keys) -> key => match key {
                Ok(TermEvent::Key(key)) => {
                    // Ctrl-C over a live run always reaches the run, browser open or not.
                    let interrupt = keys::action_for(&app.mode, key) == Some(Action::Interrupt);
                    let to_browser = !interrupt || standalone;
                    if let Some(browser) = app.browser.as_deref_mut().filter(|_| to_browser) {
                        if browse(browser, key) == Outcome::Close {
                            app.browser = None;
                            app.should_quit |= standalone;
                        }
                        dirty = true;
                    } else if let Some(action) = keys::action_for(&app.mode, key) {
                        if action == Action::OpenBrowser {
                            let mut browser = Browser::new(runs_dir.clone());
                            browser::execute(&mut browser, browser::Effect::Refresh);
                            app.browser = Some(Box::new(browser));
                        }
                        messages.push(Message::Action(action));
                    }
                }
                Ok(TermEvent::Resize(..)) => dirty = true,
                Ok(_) => {}
                // The terminal is gone (e.g. SSH dropped): the run goes on without the screen.
                Err(_) => {
                    keys = never();
                    messages.push(Message::TerminalGone);
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
            recv(signals) -> signal => messages.push(match signal {
                Ok(signal_hook::consts::SIGHUP) => Message::TerminalGone,
                _ => Message::Action(Action::Interrupt),
            }),
            recv(ticker) -> _ => {
                if let Some(browser) = app.browser.as_deref_mut()
                    && browser.opened.is_none()
                    && browser.has_running()
                    && refreshed.elapsed() >= REFRESH
                {
                    browser::execute(browser, browser::Effect::Refresh);
                    refreshed = Instant::now();
                    dirty = true;
                }
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
            if let Some((suffix, settings)) = app.write_request.take() {
                write_fix(&mut app, &suffix, &settings);
            }
        }
    }
    if app.detached || !screen_ok {
        // Dropping the terminal would try to show the cursor on a dead tty and print (so
        // panic) when that fails; there is nothing left to restore.
        std::mem::forget(terminal);
    }
    Ok(app)
}

/// Writes a new-experiment fix beside the run's experiment file and says how to start it.
fn write_fix(app: &mut App, suffix: &str, settings: &[(String, String)]) {
    let Some(base) = app.experiment_file.clone() else {
        app.report("this run has no experiment file to extend", false);
        return;
    };
    match crate::fixes::write_extending(&base, suffix, settings) {
        Ok(path) => app.report(
            format!("wrote {0}: start it with kiln train {0}", path.display()),
            true,
        ),
        Err(err) => app.report(
            format!("cannot write the {suffix} experiment: {err}"),
            false,
        ),
    }
}

/// One key in the browser: update, then the file work it asked for.
fn browse(browser: &mut Browser, key: crossterm::event::KeyEvent) -> Outcome {
    let Some(action) = browser::action_for(browser, key) else {
        return Outcome::Stay;
    };
    let (effects, outcome) = browser::update(browser, action);
    for effect in effects {
        browser::execute(browser, effect);
    }
    outcome
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

/// SIGTERM and SIGINT mean: stop the run cleanly and quit. SIGHUP means the terminal is gone:
/// the screen closes and the run trains on.
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
