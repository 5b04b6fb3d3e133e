//! The live screen: terminal set-up and restore, and the one event loop that multiplexes keys,
//! trainer events, signals and a redraw tick.

pub mod app;
pub mod browser;
pub mod keys;
pub mod pictures;
pub mod theme;
pub mod ui;
pub mod view;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, never, select, tick, unbounded};
use crossterm::event::Event as TermEvent;

use crate::protocol::{Command, Event};
use app::{Action, Effect, Message};
use browser::{Browser, BrowserMessage};
use theme::Theme;
pub use ui::{Ui, UiEffect, UiMessage};

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
///
/// The loop only gathers [`UiMessage`]s (keys, trainer events, signals, results of work done
/// elsewhere), hands each to [`ui::update`], and carries out the [`UiEffect`]s it returns.
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
    let (results_tx, results) = unbounded::<UiMessage>();
    let outside = Outside {
        commands: &commands,
        runs_dir: &runs_dir,
        results: &results_tx,
    };
    let mut trainer = events;
    let mut refreshed = Instant::now();
    let mut dirty = true;
    let mut screen_ok = true;

    while !ui.app.should_quit() {
        let mut messages = Vec::new();
        select! {
            recv(keys) -> key => match key {
                Ok(TermEvent::Key(key)) => {
                    messages.extend(keys::message_for(&ui, key));
                    dirty = true;
                }
                Ok(TermEvent::Resize(..)) => dirty = true,
                Ok(_) => {}
                // The terminal is gone (e.g. SSH dropped): the run goes on without the screen.
                Err(_) => {
                    keys = never();
                    messages.push(UiMessage::Run(Message::TerminalGone));
                }
            },
            recv(trainer) -> event => match event {
                Ok(event) => {
                    messages.push(UiMessage::Run(Message::Trainer(event)));
                    // Take everything already waiting: a fast trainer is drawn once per frame.
                    messages.extend(
                        trainer.try_iter().map(|e| UiMessage::Run(Message::Trainer(e))),
                    );
                }
                Err(_) => {
                    trainer = never();
                    messages.push(UiMessage::Run(Message::TrainerGone));
                }
            },
            recv(results) -> message => messages.extend(message),
            recv(signals) -> signal => messages.push(UiMessage::Run(match signal {
                Ok(signal_hook::consts::SIGHUP) => Message::TerminalGone,
                _ => Message::Action(Action::Interrupt),
            })),
            recv(ticker) -> _ => {
                if let Some(refresh) = browser_refresh(&ui)
                    && refreshed.elapsed() >= REFRESH
                {
                    messages.extend(execute(&ui, UiEffect::Browser(refresh), &outside));
                    refreshed = Instant::now();
                }
                if dirty && screen_ok {
                    screen_ok = terminal.draw(|frame| view::draw(frame, &ui, &theme)).is_ok();
                    dirty = false;
                }
            },
        }
        // Effects may answer at once with further messages (file work): handled in turn.
        while !messages.is_empty() {
            dirty = true;
            let mut answers = Vec::new();
            for message in messages {
                for effect in ui::update(&mut ui, message) {
                    answers.extend(execute(&ui, effect, &outside));
                }
            }
            messages = answers;
        }
    }
    if ui.app.lost_terminal() || !screen_ok {
        // Dropping the terminal would try to show the cursor on a dead tty and print (so
        // panic) when that fails; there is nothing left to restore.
        std::mem::forget(terminal);
    }
    Ok(ui)
}

/// What the browser should read again on its own: its list while a listed run trains, its
/// sweep while the sweep is live.
fn browser_refresh(ui: &Ui) -> Option<browser::Effect> {
    let browser = ui.browser.as_deref()?;
    if browser.opened.is_none() && browser.has_running() {
        Some(browser::Effect::Refresh)
    } else if browser.sweep_is_live() {
        Some(browser::Effect::RefreshSweep)
    } else {
        None
    }
}

/// What the event loop's effects reach outside the screen.
struct Outside<'a> {
    commands: &'a Sender<Command>,
    runs_dir: &'a Path,
    results: &'a Sender<UiMessage>,
}

/// Carries out an effect; what it finds at once comes back as messages for [`ui::update`]
/// (work that takes long, galleries, answers later through `outside.results`).
fn execute(ui: &Ui, effect: UiEffect, outside: &Outside) -> Vec<UiMessage> {
    match effect {
        // A trainer that has ended needs no more commands.
        UiEffect::Run(Effect::Send(command)) => {
            let _ = outside.commands.send(command);
            Vec::new()
        }
        UiEffect::Run(Effect::WriteExperiment { suffix, settings }) => {
            let (text, ok) = write_fix(ui.app.experiment_file.as_deref(), &suffix, &settings);
            vec![UiMessage::Run(Message::Report { text, ok })]
        }
        UiEffect::Run(Effect::Alert { notice, config }) => {
            let tmux = std::env::var_os("TMUX").is_some();
            let bytes = kiln_core::notify::terminal::sequence(&notice, &config, tmux);
            // Between frames: the sequences move no cursor and draw nothing.
            let mut out = std::io::stdout().lock();
            let _ = std::io::Write::write_all(&mut out, bytes.as_bytes())
                .and_then(|_| std::io::Write::flush(&mut out));
            Vec::new()
        }
        UiEffect::Run(Effect::OpenBrowser) => vec![UiMessage::BrowserOpened(Box::new(
            Browser::new(outside.runs_dir.to_path_buf()),
        ))],
        UiEffect::Run(Effect::LoadGallery { kind, request }) => {
            let run = ui
                .app
                .run
                .started
                .as_ref()
                .map(|s| outside.runs_dir.join(&s.run_id));
            load_gallery(run, kind, request, outside.results.clone());
            Vec::new()
        }
        UiEffect::Browser(effect) => match ui.browser.as_deref() {
            Some(open) => vec![UiMessage::Browser(BrowserMessage::Loaded(
                browser::perform(open, effect),
            ))],
            None => Vec::new(),
        },
    }
}

/// Builds a gallery on a thread of its own (loading data, running the model on the CPU) and
/// sends it back as a message; the screen and the trainer go on meanwhile.
fn load_gallery(
    run: Option<PathBuf>,
    kind: crate::gallery::Kind,
    request: u64,
    results: Sender<UiMessage>,
) {
    let build = move || match run {
        Some(run) => pictures::gallery(&run, kind, request),
        None => Err("the run has not started yet".to_string()),
    };
    let reply = results.clone();
    let answer = move |result| UiMessage::Run(Message::Gallery { request, result });
    let spawned = std::thread::Builder::new()
        .name("kiln-gallery".into())
        .spawn(move || {
            let result = build();
            let _ = reply.send(answer(result));
        });
    if let Err(err) = spawned {
        let result = Err(format!("cannot start a thread: {err}"));
        let _ = results.send(UiMessage::Run(Message::Gallery { request, result }));
    }
}

/// Writes a new-experiment fix beside the run's experiment file; says how to start it, or why
/// it could not be written (the text, and whether it was).
fn write_fix(base: Option<&Path>, suffix: &str, settings: &[(String, String)]) -> (String, bool) {
    let Some(base) = base else {
        return ("this run has no experiment file to extend".into(), false);
    };
    match crate::fixes::write_extending(base, suffix, settings) {
        Ok(path) => {
            let preview = augmentation_preview(&path, settings);
            (
                format!(
                    "wrote {0}{preview}: start it with kiln train {0}",
                    path.display()
                ),
                true,
            )
        }
        Err(err) => (
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
