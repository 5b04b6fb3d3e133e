//! The run screen's state and its one `update` function: trainer events and user actions in,
//! state changes and [`Effect`]s out (commands for the trainer, files to write, the browser to
//! open), which the event loop carries out. No drawing, no I/O.

mod prompt;
mod update;

use std::path::PathBuf;

use crate::protocol::{Command, Event, HyperParameter};
use crate::runs::RunState;

use crate::monitor::RunView;

pub use update::update;

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
    /// Freeze the backbone if it trains, unfreeze it if frozen.
    ToggleBackbone,
    Checkpoint,
    Stop,
    Quit,
    /// Ctrl-C: stop the run, then quit.
    Interrupt,
    ToggleChart,
    /// The per-class view: scores worst first and the confusion matrix.
    ToggleClasses,
    /// The image view of augmented training samples (again: new draws).
    ShowAugmented,
    /// The image view of the validation images the model gets wrong.
    ShowMistakes,
    /// The charts' y axes: the data's range, the full range (accuracy 0–1, loss from 0), or
    /// the loss on a log scale, in turn.
    ToggleRange,
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
    /// What the event loop's file work for an effect came to (a fix's experiment file written,
    /// or why not): shown as a notice.
    Report {
        text: String,
        ok: bool,
    },
    /// A gallery the event loop built off the screen's thread (for the request `request`).
    Gallery {
        request: u64,
        result: Result<(crate::gallery::Pictures, crate::tui::pictures::Encoded), String>,
    },
}

/// The image view's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Gallery {
    pub kind: crate::gallery::Kind,
    /// Tells a stale result (an earlier request) from the one awaited.
    pub request: u64,
    /// `None` while it is being built.
    pub content: Option<Result<crate::gallery::Pictures, String>>,
    /// The first tile shown (paging).
    pub first: usize,
    /// The tiles encoded for the terminal, once, when they arrived.
    pub encoded: crate::tui::pictures::Encoded,
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

/// The charts' y axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartScale {
    /// Both axes span the data (the default: a 94% vs 100% gap shows).
    Data,
    /// Accuracy 0–1, loss from 0.
    Full,
    /// Loss on a log scale (a loss falling by decades stays readable); accuracy spans the data.
    LogLoss,
}

impl ChartScale {
    pub fn next(self) -> Self {
        match self {
            ChartScale::Data => ChartScale::Full,
            ChartScale::Full => ChartScale::LogLoss,
            ChartScale::LogLoss => ChartScale::Data,
        }
    }

    /// What the next press of `z` shows, for the chart titles.
    pub fn next_label(self) -> &'static str {
        match self.next() {
            ChartScale::Data => "data range",
            ChartScale::Full => "full range",
            ChartScale::LogLoss => "log loss",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Chart,
    Classes,
    Images,
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

/// Whose run the screen shows, which decides what the keys may do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No trainer: events come from elsewhere (a test, the browser alone).
    Detached,
    /// The run this process trains: commands reach its thread.
    Live,
    /// A run another process trains (`kiln attach`): quitting leaves it training.
    Attached,
    /// A past run, read only, with its state from the run store.
    Review(RunState),
}

/// Where the screen is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Showing,
    /// Stop was asked for and the trainer has not finished yet; `then_quit` closes the screen
    /// once it has.
    Stopping {
        then_quit: bool,
    },
    /// The screen is done.
    Quit,
    /// The screen closed because the terminal went away while the run trains on.
    TerminalGone,
}

/// Work `update` asks the event loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A command for the trainer.
    Send(Command),
    /// A fix that needs a new experiment file: written beside the run's, extending it.
    WriteExperiment {
        suffix: String,
        settings: Vec<(String, String)>,
    },
    /// Open the run browser over the screen (the run keeps training).
    OpenBrowser,
    /// Ring the terminal: the bell and a desktop notification, as `config` asks.
    Alert {
        notice: kiln_core::notify::Notice,
        config: kiln_core::notify::NotifyConfig,
    },
    /// Build a gallery off the screen's thread; the result comes back as
    /// [`Message::Gallery`]. `request` doubles as the augmentation seed.
    LoadGallery {
        kind: crate::gallery::Kind,
        request: u64,
    },
}

/// The commands among `effects`, in order.
pub fn commands(effects: &[Effect]) -> Vec<Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(command) => Some(command.clone()),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub run: RunView,
    pub role: Role,
    pub phase: Phase,
    pub mode: Mode,
    pub screen: Screen,
    /// Rows scrolled up from the newest epoch in the table.
    pub table_scroll: usize,
    /// How the charts' y axes are scaled (`z` cycles).
    pub scale: ChartScale,
    pub notice: Option<Notice>,
    /// The experiment file of the live run, which new-experiment fixes extend.
    pub experiment_file: Option<PathBuf>,
    /// The image view's pictures, once asked for.
    pub gallery: Option<Gallery>,
    /// Galleries asked for so far.
    pub gallery_requests: u64,
    /// The terminal's bell and desktop notifications for the run, when they are on.
    pub alerts: Option<Alerts>,
}

/// What rings the terminal: the run's `[notify]` settings and the watcher that picks the events.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    pub config: kiln_core::notify::NotifyConfig,
    pub watcher: kiln_core::notify::Watcher,
}

impl Alerts {
    /// Alerts for a run whose log so far is `history` (not alerted again); none when the
    /// settings turn both the bell and the desktop notification off.
    pub fn new<'a>(
        config: &kiln_core::notify::NotifyConfig,
        history: impl IntoIterator<Item = &'a Event>,
    ) -> Option<Self> {
        let silent = !config.bell && config.desktop == kiln_core::notify::Desktop::Off;
        (!silent).then(|| Self {
            config: config.clone(),
            watcher: kiln_core::notify::Watcher::primed(config, history),
        })
    }
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// A screen with no trainer behind it.
    pub fn new() -> Self {
        Self::with_role(Role::Detached)
    }

    pub fn with_role(role: Role) -> Self {
        Self {
            run: RunView::default(),
            role,
            phase: Phase::Showing,
            mode: Mode::Normal,
            screen: Screen::Dashboard,
            table_scroll: 0,
            scale: ChartScale::Data,
            notice: None,
            experiment_file: None,
            gallery: None,
            gallery_requests: 0,
            alerts: None,
        }
    }

    /// An app attached to a running trainer.
    pub fn live() -> Self {
        Self::with_role(Role::Live)
    }

    /// A viewer of a run that another process trains.
    pub fn attached() -> Self {
        Self::with_role(Role::Attached)
    }

    /// A past run, read only.
    pub fn review(state: RunState) -> Self {
        Self::with_role(Role::Review(state))
    }

    /// Whether the screen is done and the event loop should end.
    pub fn should_quit(&self) -> bool {
        matches!(self.phase, Phase::Quit | Phase::TerminalGone)
    }

    /// Stop was asked for and the trainer has not finished yet.
    pub fn stopping(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. })
    }

    /// The screen closed because the terminal went away while the run trains on.
    pub fn lost_terminal(&self) -> bool {
        self.phase == Phase::TerminalGone
    }

    /// Whether commands reach a trainer (its own or another process's).
    pub fn has_trainer(&self) -> bool {
        matches!(self.role, Role::Live | Role::Attached)
    }

    /// The past run's state, when this shows one.
    pub fn reviewed(&self) -> Option<RunState> {
        match self.role {
            Role::Review(state) => Some(state),
            _ => None,
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
