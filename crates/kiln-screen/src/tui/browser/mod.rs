//! The run browser's state and update: a sortable, filterable table of past runs; marking runs
//! to compare; opening one into the same views a live run uses. File work (listing, reading,
//! deleting, renaming) is requested as [`Effect`]s and done by [`perform`], whose findings
//! come back to `update` as [`Loaded`]: `update` is the only place the state changes, and it
//! does no I/O.

mod files;
mod sweep;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::app::{self, Action, App};
use crate::monitor::RunView;
use crate::runs::{Listing, RunState, RunSummary};

pub use files::{Loaded, execute, perform};
pub use sweep::SweepTable;

/// Columns the table can be sorted by, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Started,
    Experiment,
    State,
    BestValidation,
    FinalGap,
    Seconds,
}

impl SortColumn {
    const ALL: [SortColumn; 6] = [
        SortColumn::Started,
        SortColumn::Experiment,
        SortColumn::State,
        SortColumn::BestValidation,
        SortColumn::FinalGap,
        SortColumn::Seconds,
    ];

    pub fn title(self) -> &'static str {
        match self {
            SortColumn::Started => "started",
            SortColumn::Experiment => "experiment",
            SortColumn::State => "state",
            SortColumn::BestValidation => "best val",
            SortColumn::FinalGap => "gap",
            SortColumn::Seconds => "time",
        }
    }

    fn next(self) -> SortColumn {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BrowserMode {
    List,
    /// Typing a filter.
    Filter,
    ConfirmDelete(String),
    /// Typing a new name for the run with this id.
    Rename {
        id: String,
        input: String,
    },
}

/// A run compared with others: its summary, replayed view and resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparedRun {
    pub summary: RunSummary,
    pub view: RunView,
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// One past run, shown with the live screen's views.
    Review(Box<App>),
    Compare(Vec<ComparedRun>),
    /// A sweep's runs against their results, live while any trains or waits.
    Sweep(SweepTable),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Browser {
    pub runs_dir: PathBuf,
    pub listing: Listing,
    /// Index into [`Browser::visible`].
    pub selected: usize,
    pub marked: BTreeSet<String>,
    pub sort: SortColumn,
    pub descending: bool,
    pub filter: String,
    pub mode: BrowserMode,
    pub opened: Option<Opened>,
    /// The latest error or notice, shown in the footer.
    pub message: Option<String>,
    /// Each run's disk use in bytes, measured when the listing is read (a running run's again
    /// at every refresh, a finished one's once).
    pub disk: std::collections::HashMap<String, u64>,
}

/// What the user can do in the browser.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserAction {
    Up,
    Down,
    PageUp,
    PageDown,
    Open,
    Mark,
    Compare,
    StartFilter,
    Type(char),
    Backspace,
    Submit,
    Cancel,
    Sort,
    ReverseSort,
    Delete,
    Rename,
    /// The selected run's sweep (or the newest sweep) as a table.
    Sweep,
    Yes,
    No,
    /// Back from an opened run, or out of the browser.
    Back,
    /// An action for the opened run's views (chart, scrolling).
    InRun(Action),
}

/// What changes the browser: the user's actions, and what its file work found.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserMessage {
    Action(BrowserAction),
    Loaded(Loaded),
}

impl From<BrowserAction> for BrowserMessage {
    fn from(action: BrowserAction) -> Self {
        BrowserMessage::Action(action)
    }
}

/// File work the update asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Refresh,
    Open(PathBuf),
    Compare(Vec<PathBuf>),
    Delete(PathBuf),
    Rename(PathBuf, String),
    /// Open the sweep that holds this run (the newest sweep when none does, or without a run).
    Sweep(Option<String>),
    /// Read the opened sweep's states and results again.
    RefreshSweep,
    /// Pictures for the opened run's image view (built at once: nothing trains meanwhile).
    Gallery {
        run: PathBuf,
        kind: crate::gallery::Kind,
        request: u64,
    },
}

/// Whether the browser stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    Close,
}

impl Browser {
    pub fn new(runs_dir: PathBuf) -> Self {
        Self {
            runs_dir,
            listing: Listing::default(),
            selected: 0,
            marked: BTreeSet::new(),
            sort: SortColumn::Started,
            descending: true,
            filter: String::new(),
            mode: BrowserMode::List,
            opened: None,
            message: None,
            disk: Default::default(),
        }
    }

    /// The runs shown: filtered by the typed text, in the chosen order.
    pub fn visible(&self) -> Vec<&RunSummary> {
        let needle = self.filter.to_lowercase();
        let mut runs: Vec<&RunSummary> = self
            .listing
            .runs
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || [&r.id, &r.experiment, &r.dataset, r.state.label()]
                        .iter()
                        .any(|field| field.to_lowercase().contains(&needle))
            })
            .collect();
        let metric = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
        runs.sort_by(|a, b| {
            let order = match self.sort {
                SortColumn::Started => a.id.cmp(&b.id),
                SortColumn::Experiment => a.experiment.cmp(&b.experiment),
                SortColumn::State => a.state.label().cmp(b.state.label()),
                SortColumn::BestValidation => metric(a.best_validation_accuracy)
                    .total_cmp(&metric(b.best_validation_accuracy)),
                SortColumn::FinalGap => metric(a.final_gap).total_cmp(&metric(b.final_gap)),
                SortColumn::Seconds => a.seconds.total_cmp(&b.seconds),
            }
            .then_with(|| a.id.cmp(&b.id));
            if self.descending {
                order.reverse()
            } else {
                order
            }
        });
        runs
    }

    pub fn selected_run(&self) -> Option<&RunSummary> {
        self.visible().get(self.selected).copied()
    }

    fn clamp_selection(&mut self) {
        let count = self.visible().len();
        self.selected = self.selected.min(count.saturating_sub(1));
    }

    /// Whether the opened sweep has runs waiting or training (its table then refreshes itself).
    pub fn sweep_is_live(&self) -> bool {
        matches!(&self.opened, Some(Opened::Sweep(table)) if table.is_live())
    }

    /// Whether any listed run is still being trained (the list then refreshes itself).
    pub fn has_running(&self) -> bool {
        self.listing
            .runs
            .iter()
            .any(|r| r.state == RunState::Running)
    }
}

const PAGE: usize = 10;

/// Applies a message; returns the file work to do and whether the browser stays open.
pub fn update(browser: &mut Browser, message: impl Into<BrowserMessage>) -> (Vec<Effect>, Outcome) {
    match message.into() {
        BrowserMessage::Action(action) => on_action(browser, action),
        BrowserMessage::Loaded(loaded) => {
            on_loaded(browser, loaded);
            (Vec::new(), Outcome::Stay)
        }
    }
}

/// Records what the file work found.
fn on_loaded(browser: &mut Browser, loaded: Loaded) {
    match loaded {
        Loaded::Listing(Ok((listing, measured))) => {
            let known: BTreeSet<&String> = listing.runs.iter().map(|r| &r.id).collect();
            browser.marked.retain(|id| known.contains(id));
            browser.disk.retain(|id, _| known.contains(id));
            browser.disk.extend(measured);
            browser.listing = listing;
            browser.clamp_selection();
        }
        Loaded::Listing(Err(err))
        | Loaded::Review(Err(err))
        | Loaded::Compared(Err(err))
        | Loaded::Sweep(Err(err)) => browser.message = Some(err),
        Loaded::Review(Ok(app)) => browser.opened = Some(Opened::Review(app)),
        Loaded::Compared(Ok(runs)) => browser.opened = Some(Opened::Compare(runs)),
        Loaded::Sweep(Ok(table)) => browser.opened = Some(Opened::Sweep(table)),
        Loaded::Changed { notice, listing } => {
            on_loaded(browser, *listing);
            browser.message = Some(notice);
        }
        Loaded::SweepRows { id, rows } => {
            if let (Some(Opened::Sweep(table)), Some(rows)) = (browser.opened.as_mut(), rows)
                && table.id == id
            {
                table.replace_rows(rows);
            }
        }
        Loaded::Gallery { request, result } => {
            if let Some(Opened::Review(review)) = browser.opened.as_mut() {
                let _ = app::update(review, app::Message::Gallery { request, result });
            }
        }
    }
}

fn on_action(browser: &mut Browser, action: BrowserAction) -> (Vec<Effect>, Outcome) {
    if let Some(opened) = &mut browser.opened {
        match action {
            BrowserAction::Back => browser.opened = None,
            BrowserAction::Sort | BrowserAction::ReverseSort
                if let Opened::Sweep(table) = opened =>
            {
                table.sort_by(action == BrowserAction::Sort);
            }
            BrowserAction::InRun(action) => {
                if let Opened::Review(app) = opened {
                    // A past run takes view actions only; of the effects, only pictures.
                    let run = app
                        .run
                        .started
                        .as_ref()
                        .map(|s| browser.runs_dir.join(&s.run_id));
                    let effects = app::update(app, app::Message::Action(action))
                        .into_iter()
                        .filter_map(|effect| match (effect, &run) {
                            (app::Effect::LoadGallery { kind, request }, Some(run)) => {
                                Some(Effect::Gallery {
                                    run: run.clone(),
                                    kind,
                                    request,
                                })
                            }
                            _ => None,
                        })
                        .collect();
                    return (effects, Outcome::Stay);
                }
            }
            _ => {}
        }
        return (Vec::new(), Outcome::Stay);
    }
    browser.message = None;
    let mut effects = Vec::new();
    match (browser.mode.clone(), action) {
        (BrowserMode::List, action) => return list_action(browser, action),
        (BrowserMode::Filter, BrowserAction::Type(c)) => {
            browser.filter.push(c);
            browser.selected = 0;
        }
        (BrowserMode::Filter, BrowserAction::Backspace) => {
            browser.filter.pop();
        }
        (BrowserMode::Filter, BrowserAction::Submit) => browser.mode = BrowserMode::List,
        (BrowserMode::Filter, BrowserAction::Cancel) => {
            browser.filter.clear();
            browser.mode = BrowserMode::List;
        }
        (BrowserMode::ConfirmDelete(id), BrowserAction::Yes) => {
            if let Some(run) = browser.listing.runs.iter().find(|r| r.id == id) {
                effects.push(Effect::Delete(run.path.clone()));
            }
            browser.mode = BrowserMode::List;
        }
        (BrowserMode::ConfirmDelete(_), BrowserAction::No) => {
            browser.message = Some("nothing deleted".into());
            browser.mode = BrowserMode::List;
        }
        (BrowserMode::Rename { id, mut input }, action) => match action {
            BrowserAction::Type(c) => {
                input.push(c);
                browser.mode = BrowserMode::Rename { id, input };
            }
            BrowserAction::Backspace => {
                input.pop();
                browser.mode = BrowserMode::Rename { id, input };
            }
            BrowserAction::Submit => {
                if let Some(run) = browser.listing.runs.iter().find(|r| r.id == id)
                    && !input.trim().is_empty()
                    && input != id
                {
                    effects.push(Effect::Rename(run.path.clone(), input.trim().to_string()));
                }
                browser.mode = BrowserMode::List;
            }
            BrowserAction::Cancel => browser.mode = BrowserMode::List,
            _ => browser.mode = BrowserMode::Rename { id, input },
        },
        _ => {}
    }
    browser.clamp_selection();
    (effects, Outcome::Stay)
}

fn list_action(browser: &mut Browser, action: BrowserAction) -> (Vec<Effect>, Outcome) {
    let count = browser.visible().len();
    let mut effects = Vec::new();
    match action {
        BrowserAction::Up => browser.selected = browser.selected.saturating_sub(1),
        BrowserAction::Down => {
            browser.selected = (browser.selected + 1).min(count.saturating_sub(1))
        }
        BrowserAction::PageUp => browser.selected = browser.selected.saturating_sub(PAGE),
        BrowserAction::PageDown => {
            browser.selected = (browser.selected + PAGE).min(count.saturating_sub(1));
        }
        BrowserAction::Open => {
            if let Some(run) = browser.selected_run() {
                effects.push(Effect::Open(run.path.clone()));
            }
        }
        BrowserAction::Mark => {
            if let Some(id) = browser.selected_run().map(|r| r.id.clone())
                && !browser.marked.remove(&id)
            {
                browser.marked.insert(id);
            }
            browser.selected = (browser.selected + 1).min(count.saturating_sub(1));
        }
        BrowserAction::Compare => {
            let paths: Vec<PathBuf> = browser
                .listing
                .runs
                .iter()
                .filter(|r| browser.marked.contains(&r.id))
                .map(|r| r.path.clone())
                .collect();
            if paths.len() >= 2 {
                effects.push(Effect::Compare(paths));
            } else {
                browser.message = Some("mark two or more runs with space, then press c".into());
            }
        }
        BrowserAction::StartFilter => browser.mode = BrowserMode::Filter,
        BrowserAction::Sort => {
            browser.sort = browser.sort.next();
            // Newest, best and longest first are what people look for.
            browser.descending =
                !matches!(browser.sort, SortColumn::Experiment | SortColumn::State);
        }
        BrowserAction::ReverseSort => browser.descending = !browser.descending,
        BrowserAction::Delete => {
            if let Some(run) = browser.selected_run() {
                browser.mode = if run.state == RunState::Running {
                    browser.message = Some(format!("{} is still training", run.id));
                    BrowserMode::List
                } else {
                    BrowserMode::ConfirmDelete(run.id.clone())
                };
            }
        }
        BrowserAction::Rename => {
            if let Some(run) = browser.selected_run() {
                browser.mode = BrowserMode::Rename {
                    id: run.id.clone(),
                    input: run.id.clone(),
                };
            }
        }
        BrowserAction::Sweep => {
            effects.push(Effect::Sweep(browser.selected_run().map(|r| r.id.clone())));
        }
        BrowserAction::Back => return (effects, Outcome::Close),
        _ => {}
    }
    (effects, Outcome::Stay)
}
