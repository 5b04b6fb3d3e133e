//! The front end's state and its one `update` function: trainer events and user actions in,
//! state changes and commands for the trainer out. No drawing, no I/O.

use crate::protocol::{Command, Event, EventKind, Fix, HyperParameter};
use crate::runs::RunState;

use super::browser::Browser;
use super::run_view::{RunStatus, RunView, lr};

/// Dropout moves in steps of this size with `d` / `D`.
const DROPOUT_STEP: f64 = 0.05;
const DROPOUT_MAX: f64 = 0.95;

/// What the user can do; keys map to these (see `keys`).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    TogglePause,
    DropoutDown,
    DropoutUp,
    LearningRateDown,
    LearningRateUp,
    /// Open the prompt to type an exact value.
    EditValue,
    Checkpoint,
    Stop,
    Quit,
    /// Ctrl-C: stop the run, then quit.
    Interrupt,
    ToggleChart,
    ToggleHelp,
    /// Open the run browser over the live screen (the run keeps training).
    OpenBrowser,
    /// Apply remedy N (from 1) of the top finding in the diagnosis panel.
    ApplyRemedy(usize),
    ScrollUp,
    ScrollDown,
    ScrollToLatest,
    /// Answers in a confirmation.
    Yes,
    No,
    /// Prompt editing.
    Type(char),
    Backspace,
    SwitchField,
    Submit,
    Cancel,
}

/// Everything that can change the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Trainer(Event),
    /// The trainer's channel closed.
    TrainerGone,
    /// The terminal went away (SIGHUP, closed SSH session): leave the screen, keep training.
    TerminalGone,
    Action(Action),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub field: HyperParameter,
    pub input: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    Prompt(Prompt),
    ConfirmQuit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Chart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    /// Sent; waiting for the trainer to apply it.
    Pending,
    Confirmed,
    Rejected,
}

/// The acknowledgement line for the latest command.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub state: NoticeState,
    /// Which event confirms it.
    awaiting: Awaiting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Paused,
    Resumed,
    Change(HyperParameter),
    Checkpoint,
    Finished,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub run: RunView,
    pub mode: Mode,
    pub screen: Screen,
    /// Rows scrolled up from the newest epoch in the table.
    pub table_scroll: usize,
    pub notice: Option<Notice>,
    /// Stop was asked for and the trainer has not finished yet.
    pub stopping: bool,
    /// Quit as soon as the trainer has finished.
    pub quit_when_finished: bool,
    pub should_quit: bool,
    /// Set when this shows a past run (read only), with its state from the run store.
    pub review: Option<RunState>,
    /// The run browser, when open; it takes the keys and the screen.
    pub browser: Option<Box<Browser>>,
    /// Whether a training thread is attached (its commands go somewhere).
    pub live: bool,
    /// The experiment file of the live run, which new-experiment fixes extend.
    pub experiment_file: Option<std::path::PathBuf>,
    /// A fix the event loop should write as a new experiment file (suffix, settings).
    pub write_request: Option<(String, Vec<(String, String)>)>,
    /// The screen closed because the terminal went away while the run kept training.
    pub detached: bool,
    /// Watching a run trained by another process (`kiln attach`): quitting leaves it training.
    pub attached: bool,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    pub fn new() -> Self {
        Self {
            run: RunView::default(),
            mode: Mode::Normal,
            screen: Screen::Dashboard,
            table_scroll: 0,
            notice: None,
            stopping: false,
            quit_when_finished: false,
            should_quit: false,
            review: None,
            browser: None,
            live: false,
            experiment_file: None,
            write_request: None,
            detached: false,
            attached: false,
        }
    }

    /// An app attached to a running trainer.
    pub fn live() -> Self {
        Self {
            live: true,
            ..Self::new()
        }
    }

    /// A viewer of a run that another process trains.
    pub fn attached() -> Self {
        Self {
            attached: true,
            ..Self::live()
        }
    }

    /// Shows the outcome of work done outside `update` (writing a fix's experiment file).
    pub fn report(&mut self, text: impl Into<String>, ok: bool) {
        let state = if ok {
            NoticeState::Confirmed
        } else {
            NoticeState::Rejected
        };
        self.notify(text, state, Awaiting::Nothing);
    }

    fn notify(&mut self, text: impl Into<String>, state: NoticeState, awaiting: Awaiting) {
        self.notice = Some(Notice {
            text: text.into(),
            state,
            awaiting,
        });
    }

    fn awaiting(&self) -> Awaiting {
        self.notice
            .as_ref()
            .map_or(Awaiting::Nothing, |n| n.awaiting)
    }
}

/// Applies a message; returns the commands to send to the trainer.
pub fn update(app: &mut App, message: Message) -> Vec<Command> {
    match message {
        Message::Trainer(event) => {
            on_event(app, &event);
            Vec::new()
        }
        Message::TrainerGone => {
            if app.run.is_active() {
                app.run.status = RunStatus::Failed("the training thread ended unexpectedly".into());
            }
            if app.quit_when_finished {
                app.should_quit = true;
            }
            Vec::new()
        }
        Message::TerminalGone => {
            // Nobody can see or steer the screen any more, but the run is worth finishing.
            app.detached = app.live && (app.attached || app.run.is_active());
            app.should_quit = true;
            Vec::new()
        }
        Message::Action(action) => on_action(app, action),
    }
}

fn on_event(app: &mut App, event: &Event) {
    app.run.apply(event);
    let awaiting = app.awaiting();
    let step = event.step.unwrap_or(app.run.step);
    let confirmed = match (&event.kind, awaiting) {
        (EventKind::Paused { .. }, Awaiting::Paused) => Some(format!("paused at step {step}")),
        (EventKind::Resumed, Awaiting::Resumed) => Some(format!("resumed at step {step}")),
        (EventKind::HyperParameterChanged { parameter, .. }, Awaiting::Change(wanted))
            if *parameter == wanted =>
        {
            app.run
                .changes
                .last()
                .map(|c| format!("{} applied at step {step}", c.describe()))
        }
        (EventKind::CheckpointWritten { path }, Awaiting::Checkpoint) => {
            Some(format!("checkpoint saved: {path}"))
        }
        (EventKind::Finished(_), Awaiting::Finished) => Some("run stopped".to_string()),
        _ => None,
    };
    if let Some(text) = confirmed {
        app.notify(text, NoticeState::Confirmed, Awaiting::Nothing);
    } else if let (EventKind::Warning { message }, Awaiting::Change(_)) = (&event.kind, awaiting) {
        app.notify(message.clone(), NoticeState::Rejected, Awaiting::Nothing);
    }
    if !app.run.is_active() {
        app.stopping = false;
        if app.quit_when_finished {
            app.should_quit = true;
        }
    }
}

fn on_action(app: &mut App, action: Action) -> Vec<Command> {
    match app.mode.clone() {
        Mode::Help => {
            if matches!(action, Action::ToggleHelp | Action::Cancel | Action::Quit) {
                app.mode = Mode::Normal;
                return Vec::new();
            }
            if action == Action::Interrupt {
                return on_normal_action(app, action);
            }
            Vec::new()
        }
        Mode::ConfirmQuit => match action {
            Action::Yes => {
                app.mode = Mode::Normal;
                quit(app)
            }
            Action::No | Action::Cancel => {
                app.mode = Mode::Normal;
                Vec::new()
            }
            Action::Interrupt => on_normal_action(app, action),
            _ => Vec::new(),
        },
        Mode::Prompt(prompt) => on_prompt_action(app, prompt, action),
        Mode::Normal => on_normal_action(app, action),
    }
}

/// Stops an active run and quits once it has ended; quits at once otherwise.
fn quit(app: &mut App) -> Vec<Command> {
    if app.run.is_active() {
        app.quit_when_finished = true;
        stop(app)
    } else {
        app.should_quit = true;
        Vec::new()
    }
}

fn stop(app: &mut App) -> Vec<Command> {
    if app.stopping {
        return Vec::new();
    }
    app.stopping = true;
    app.notify(
        "stop requested: finishing the batch and saving a checkpoint…",
        NoticeState::Pending,
        Awaiting::Finished,
    );
    vec![Command::Stop]
}

fn on_normal_action(app: &mut App, action: Action) -> Vec<Command> {
    let live_only = matches!(
        action,
        Action::TogglePause
            | Action::DropoutDown
            | Action::DropoutUp
            | Action::LearningRateDown
            | Action::LearningRateUp
            | Action::EditValue
            | Action::Checkpoint
            | Action::Stop
            | Action::ApplyRemedy(_)
    );
    if live_only && app.review.is_some() {
        app.notify(
            "a past run is read only",
            NoticeState::Rejected,
            Awaiting::Nothing,
        );
        return Vec::new();
    }
    if live_only && (!app.run.is_active() || app.stopping) {
        app.notify(
            "the run is no longer training",
            NoticeState::Rejected,
            Awaiting::Nothing,
        );
        return Vec::new();
    }
    match action {
        Action::TogglePause => {
            if matches!(app.run.status, RunStatus::Paused | RunStatus::Diverged) {
                app.notify("resume requested…", NoticeState::Pending, Awaiting::Resumed);
                vec![Command::Resume]
            } else {
                app.notify("pause requested…", NoticeState::Pending, Awaiting::Paused);
                vec![Command::Pause]
            }
        }
        Action::DropoutDown | Action::DropoutUp => {
            let delta = if action == Action::DropoutUp {
                DROPOUT_STEP
            } else {
                -DROPOUT_STEP
            };
            let value = ((app.run.dropout + delta) * 100.0).round() / 100.0;
            set_dropout(app, value.clamp(0.0, DROPOUT_MAX))
        }
        Action::LearningRateDown => set_learning_rate(app, app.run.learning_rate / 2.0),
        Action::LearningRateUp => set_learning_rate(app, app.run.learning_rate * 2.0),
        Action::EditValue => {
            app.mode = Mode::Prompt(Prompt {
                field: HyperParameter::Dropout,
                input: format!("{:.2}", app.run.dropout),
                error: None,
            });
            Vec::new()
        }
        Action::Checkpoint => {
            app.notify(
                "checkpoint requested…",
                NoticeState::Pending,
                Awaiting::Checkpoint,
            );
            vec![Command::Checkpoint]
        }
        Action::Stop => stop(app),
        // A viewer leaves; the run trains on in its own process.
        Action::Quit | Action::Interrupt if app.attached => {
            app.should_quit = true;
            Vec::new()
        }
        Action::Quit => {
            if app.run.is_active() {
                app.mode = Mode::ConfirmQuit;
            } else {
                app.should_quit = true;
            }
            Vec::new()
        }
        Action::Interrupt => {
            if app.stopping || !app.live || !app.run.is_active() {
                // A second Ctrl-C, or nothing left to stop: leave now.
                app.should_quit = true;
                Vec::new()
            } else {
                app.mode = Mode::Normal;
                quit(app)
            }
        }
        Action::ToggleChart => {
            app.screen = match app.screen {
                Screen::Dashboard => Screen::Chart,
                Screen::Chart => Screen::Dashboard,
            };
            Vec::new()
        }
        Action::ToggleHelp => {
            app.mode = Mode::Help;
            Vec::new()
        }
        // The event loop sees the request and opens the browser (it needs the runs folder).
        Action::OpenBrowser => Vec::new(),
        Action::ApplyRemedy(n) => apply_remedy(app, n),
        Action::ScrollUp => {
            let max = app.run.epochs.len().saturating_sub(1);
            app.table_scroll = (app.table_scroll + 1).min(max);
            Vec::new()
        }
        Action::ScrollDown => {
            app.table_scroll = app.table_scroll.saturating_sub(1);
            Vec::new()
        }
        Action::ScrollToLatest => {
            app.table_scroll = 0;
            Vec::new()
        }
        Action::Yes
        | Action::No
        | Action::Type(_)
        | Action::Backspace
        | Action::SwitchField
        | Action::Submit
        | Action::Cancel => Vec::new(),
    }
}

fn apply_remedy(app: &mut App, n: usize) -> Vec<Command> {
    let remedy = app
        .run
        .findings()
        .first()
        .and_then(|f| f.remedies.get(n.wrapping_sub(1)).cloned());
    let Some(remedy) = remedy else {
        app.notify(
            format!("no remedy {n} to apply"),
            NoticeState::Rejected,
            Awaiting::Nothing,
        );
        return Vec::new();
    };
    match remedy.fix {
        Fix::SetDropout { value } => set_dropout(app, value),
        Fix::SetLearningRate { value } => set_learning_rate(app, value),
        Fix::Stop => stop(app),
        Fix::NewExperiment { suffix, settings } => {
            app.notify(
                format!("writing the {suffix} experiment…"),
                NoticeState::Pending,
                Awaiting::Nothing,
            );
            app.write_request = Some((suffix, settings));
            Vec::new()
        }
    }
}

fn set_dropout(app: &mut App, value: f64) -> Vec<Command> {
    app.notify(
        format!("dropout {value:.2} requested…"),
        NoticeState::Pending,
        Awaiting::Change(HyperParameter::Dropout),
    );
    vec![Command::SetDropout { value }]
}

fn set_learning_rate(app: &mut App, value: f64) -> Vec<Command> {
    app.notify(
        format!("learning rate {} requested…", lr(value)),
        NoticeState::Pending,
        Awaiting::Change(HyperParameter::LearningRate),
    );
    vec![Command::SetLearningRate { value }]
}

fn on_prompt_action(app: &mut App, mut prompt: Prompt, action: Action) -> Vec<Command> {
    match action {
        Action::Type(c) if c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+') => {
            prompt.input.push(c);
            prompt.error = None;
        }
        Action::Backspace => {
            prompt.input.pop();
            prompt.error = None;
        }
        Action::SwitchField => {
            prompt.field = match prompt.field {
                HyperParameter::Dropout => HyperParameter::LearningRate,
                HyperParameter::LearningRate => HyperParameter::Dropout,
            };
            prompt.input = match prompt.field {
                HyperParameter::Dropout => format!("{:.2}", app.run.dropout),
                HyperParameter::LearningRate => lr(app.run.learning_rate),
            };
            prompt.error = None;
        }
        Action::Cancel => {
            app.mode = Mode::Normal;
            return Vec::new();
        }
        Action::Interrupt => {
            app.mode = Mode::Normal;
            return on_normal_action(app, Action::Interrupt);
        }
        Action::Submit => match validate_prompt(&prompt) {
            Ok(value) => {
                app.mode = Mode::Normal;
                if !app.run.is_active() || app.stopping {
                    return on_normal_action(app, Action::EditValue);
                }
                return match prompt.field {
                    HyperParameter::Dropout => set_dropout(app, value),
                    HyperParameter::LearningRate => set_learning_rate(app, value),
                };
            }
            Err(error) => prompt.error = Some(error),
        },
        _ => {}
    }
    app.mode = Mode::Prompt(prompt);
    Vec::new()
}

fn validate_prompt(prompt: &Prompt) -> Result<f64, String> {
    let value: f64 = prompt
        .input
        .trim()
        .parse()
        .map_err(|_| format!("\"{}\" is not a number", prompt.input))?;
    match prompt.field {
        HyperParameter::Dropout if !(0.0..1.0).contains(&value) => {
            Err("dropout must be in [0, 1)".into())
        }
        HyperParameter::LearningRate if !(value.is_finite() && value > 0.0) => {
            Err("the learning rate must be positive".into())
        }
        _ => Ok(value),
    }
}
