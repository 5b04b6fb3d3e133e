//! The live screen: terminal set-up and restore, and the one event loop that multiplexes keys,
//! trainer events, signals and a redraw tick.

pub mod app;
pub mod browser;
pub mod keys;
pub mod pictures;
pub mod theme;
mod ui;
pub mod view;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, select, tick, unbounded};
use crossterm::event::{Event as TermEvent, KeyEvent};

use crate::protocol::{Command, Event};
use app::{Action, App, Effect, Message, Phase, update};
use browser::{Browser, Outcome};
use theme::Theme;
pub use ui::Ui;

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

/// Shows `ui` until the user quits; returns the final state. `events` and `commands` connect
/// a run (use `never()` and a dropped channel for none); `runs_dir` is where the browser looks.
pub fn run(
    mut ui: Ui,
    events: Receiver<Event>,
    commands: Sender<Command>,
    theme: Theme,
    runs_dir: PathBuf,
) -> anyhow::Result<Ui> {
    // try_init also installs a panic hook that restores the terminal before the message prints.
    let mut terminal = ratatui::try_init()?;
    let _guard = TerminalGuard;
    if theme.pictures {
        // Before the input reader starts: the terminal's answer must not reach it as keys.
        pictures::init(theme.images);
    }
    let mut keys = spawn_input_reader();
    let signals = spawn_signal_listener();
    let ticker = tick(FRAME);
    // Work done off this thread (galleries) reports back here.
    let (results_tx, results) = unbounded::<Message>();
    let mut trainer = events;
    let mut refreshed = Instant::now();
    let mut dirty = true;
    let mut screen_ok = true;

    while !ui.app.should_quit() {
        let mut messages = Vec::new();
        select! {
            recv(keys) -> key => match key {
                Ok(TermEvent::Key(key)) => {
                    messages.extend(route_key(&mut ui, key));
                    dirty = true;
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
            recv(results) -> message => messages.extend(message),
            recv(signals) -> signal => messages.push(match signal {
                Ok(signal_hook::consts::SIGHUP) => Message::TerminalGone,
                _ => Message::Action(Action::Interrupt),
            }),
            recv(ticker) -> _ => {
                if let Some(browser) = ui.browser.as_deref_mut()
                    && ((browser.opened.is_none() && browser.has_running())
                        || browser.sweep_is_live())
                    && refreshed.elapsed() >= REFRESH
                {
                    let effect = if browser.opened.is_none() {
                        browser::Effect::Refresh
                    } else {
                        browser::Effect::RefreshSweep
                    };
                    browser::execute(browser, effect);
                    refreshed = Instant::now();
                    dirty = true;
                }
                if dirty && screen_ok {
                    screen_ok = terminal.draw(|frame| view::draw(frame, &ui, &theme)).is_ok();
                    dirty = false;
                }
            },
        }
        for message in messages {
            dirty = true;
            for effect in update(&mut ui.app, message) {
                execute(&mut ui, effect, &commands, &runs_dir, &results_tx);
            }
        }
    }
    if ui.app.lost_terminal() || !screen_ok {
        // Dropping the terminal would try to show the cursor on a dead tty and print (so
        // panic) when that fails; there is nothing left to restore.
        std::mem::forget(terminal);
    }
    Ok(ui)
}

/// A key goes to the browser when it is open (and does the file work it asks for), else it
/// becomes a message for the run screen. Ctrl-C over a run always reaches the run.
fn route_key(ui: &mut Ui, key: KeyEvent) -> Option<Message> {
    let action = keys::action_for(&ui.app.mode, key);
    let interrupt = action == Some(Action::Interrupt);
    let standalone = ui.standalone;
    let Some(browser) = ui
        .browser
        .as_deref_mut()
        .filter(|_| !interrupt || standalone)
    else {
        return action.map(Message::Action);
    };
    let browser_action = keys::browser_action_for(browser, key)?;
    let (effects, outcome) = browser::update(browser, browser_action);
    for effect in effects {
        browser::execute(browser, effect);
    }
    if outcome == Outcome::Close {
        ui.browser = None;
        if standalone {
            ui.app.phase = Phase::Quit;
        }
    }
    None
}

/// Carries out what the run screen's update asked for.
fn execute(
    ui: &mut Ui,
    effect: Effect,
    commands: &Sender<Command>,
    runs_dir: &Path,
    results: &Sender<Message>,
) {
    match effect {
        // A trainer that has ended needs no more commands.
        Effect::Send(command) => {
            let _ = commands.send(command);
        }
        Effect::WriteExperiment { suffix, settings } => write_fix(&mut ui.app, &suffix, &settings),
        Effect::OpenBrowser => {
            let mut browser = Browser::new(runs_dir.to_path_buf());
            browser::execute(&mut browser, browser::Effect::Refresh);
            ui.browser = Some(Box::new(browser));
        }
        Effect::LoadGallery { kind, request } => {
            let run = ui
                .app
                .run
                .started
                .as_ref()
                .map(|s| runs_dir.join(&s.run_id));
            load_gallery(run, kind, request, results.clone());
        }
    }
}

/// Builds a gallery on a thread of its own (loading data, running the model on the CPU) and
/// sends it back as a message; the screen and the trainer go on meanwhile.
fn load_gallery(
    run: Option<PathBuf>,
    kind: crate::gallery::Kind,
    request: u64,
    results: Sender<Message>,
) {
    let build = move || match run {
        Some(run) => pictures::gallery(&run, kind, request),
        None => Err("the run has not started yet".to_string()),
    };
    let reply = results.clone();
    let spawned = std::thread::Builder::new()
        .name("kiln-gallery".into())
        .spawn(move || {
            let result = build();
            let _ = reply.send(Message::Gallery { request, result });
        });
    if let Err(err) = spawned {
        let result = Err(format!("cannot start a thread: {err}"));
        let _ = results.send(Message::Gallery { request, result });
    }
}

/// Writes a new-experiment fix beside the run's experiment file and says how to start it.
fn write_fix(app: &mut App, suffix: &str, settings: &[(String, String)]) {
    let Some(base) = app.experiment_file.clone() else {
        app.report("this run has no experiment file to extend", false);
        return;
    };
    match crate::fixes::write_extending(&base, suffix, settings) {
        Ok(path) => {
            let preview = augmentation_preview(&path, settings);
            app.report(
                format!(
                    "wrote {0}{preview}: start it with kiln train {0}",
                    path.display()
                ),
                true,
            )
        }
        Err(err) => app.report(
            format!("cannot write the {suffix} experiment: {err}"),
            false,
        ),
    }
}

/// For a fix that changes augmentation, its preview grid beside the new file (`FILE.png`), so
/// the user can look before training on it: ` (preview: FILE.png)`, or why there is none.
fn augmentation_preview(file: &Path, settings: &[(String, String)]) -> String {
    match pictures::augmentation_preview(file, settings) {
        None => String::new(),
        Some(Ok(png)) => format!(" (preview: {})", png.display()),
        Some(Err(err)) => format!(" (no preview: {err})"),
    }
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
