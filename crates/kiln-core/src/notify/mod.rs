//! Notifications: which of a run's events a user hears about (it ended, it failed, the diagnosis
//! raised a new problem), in what words, and the two ways they go out: the user's `notify`
//! command ([`command`], run by the training process) and the terminal's bell and desktop
//! notification ([`terminal`], sent by the live screen).

pub mod command;
pub mod terminal;

use std::path::Path;

pub use crate::experiment::{Desktop, NotifyConfig};
use crate::protocol::{Event, EventKind, Outcome, Problem};

/// The notify command as a follower of the run: the watcher picks the events, the runner runs
/// the command for them.
pub struct CommandNotifier {
    pub watcher: Watcher,
    pub runner: command::Runner,
    pub run_dir: std::path::PathBuf,
}

impl crate::tap::Tap for CommandNotifier {
    fn observe(&mut self, event: &Event) -> Vec<String> {
        if let Some(notice) = self.watcher.observe(event) {
            self.runner.send(notice.environment(&self.run_dir));
        }
        self.runner.failures()
    }

    fn finish(self: Box<Self>) -> Vec<String> {
        self.runner.finish()
    }
}

/// What a notice is about; `KILN_EVENT` in the command's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Finished,
    Failed,
    Problem,
}

impl NoticeKind {
    pub fn name(self) -> &'static str {
        match self {
            NoticeKind::Finished => "finished",
            NoticeKind::Failed => "failed",
            NoticeKind::Problem => "problem",
        }
    }
}

/// One notification: what happened to which run, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    /// `finished`, `stopped`, `stopped_early`, `time_limit`, `failed`, or `running` (a problem).
    pub status: &'static str,
    pub run_id: String,
    pub experiment: String,
    /// The best epoch and its validation accuracy, when an epoch has completed.
    pub best: Option<(usize, f64)>,
    /// The new problems' titles (a problem notice).
    pub problems: Vec<String>,
    /// The notification's title and body.
    pub title: String,
    pub body: String,
}

impl Notice {
    /// The environment the notify command runs with.
    pub fn environment(&self, run_dir: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("KILN_EVENT", self.kind.name().to_string()),
            ("KILN_STATUS", self.status.to_string()),
            ("KILN_RUN_ID", self.run_id.clone()),
            ("KILN_RUN_DIR", run_dir.display().to_string()),
            ("KILN_EXPERIMENT", self.experiment.clone()),
            (
                "KILN_BEST_ACCURACY",
                self.best.map_or(String::new(), |(_, a)| format!("{a:.4}")),
            ),
            (
                "KILN_BEST_EPOCH",
                self.best.map_or(String::new(), |(e, _)| e.to_string()),
            ),
            ("KILN_PROBLEM", self.problems.join(", ")),
            ("KILN_MESSAGE", format!("{}: {}", self.title, self.body)),
        ]
    }
}

/// Follows a run's events and says which deserve a notice: the end, a failure, and (when
/// asked for) each problem the diagnosis raises that it had not raised just before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watcher {
    run_id: String,
    experiment: String,
    problems: bool,
    best: Option<(usize, f64)>,
    epochs: usize,
    /// The problems of the last diagnosis.
    known: Vec<Problem>,
}

impl Watcher {
    /// A watcher for the run `run_id` of `experiment` (a run-start event sets both too).
    pub fn new(run_id: &str, experiment: &str, config: &NotifyConfig) -> Self {
        Self {
            run_id: run_id.to_string(),
            experiment: experiment.to_string(),
            problems: config.problems,
            ..Self::default()
        }
    }

    /// A watcher that has seen `history` (a resumed run's log, a screen's replay) without
    /// notifying any of it.
    pub fn primed<'a>(config: &NotifyConfig, history: impl IntoIterator<Item = &'a Event>) -> Self {
        Self::new("", "", config).seen(history)
    }

    /// This watcher once it has seen `history` without notifying any of it.
    pub fn seen<'a>(mut self, history: impl IntoIterator<Item = &'a Event>) -> Self {
        for event in history {
            self.observe(event);
        }
        self
    }

    /// The notice `event` deserves, if any.
    pub fn observe(&mut self, event: &Event) -> Option<Notice> {
        match &event.kind {
            EventKind::RunStarted(start) => {
                self.run_id = start.run_id.clone();
                self.experiment = start.experiment.clone();
                None
            }
            EventKind::Epoch(metrics) => {
                self.epochs = event.epoch.unwrap_or(self.epochs + 1);
                if self
                    .best
                    .is_none_or(|(_, best)| metrics.validation_accuracy > best)
                {
                    self.best = Some((self.epochs, metrics.validation_accuracy));
                }
                None
            }
            EventKind::Diagnosis { findings } => {
                let now: Vec<Problem> = findings.iter().map(|f| f.problem).collect();
                let new: Vec<&crate::protocol::Finding> = findings
                    .iter()
                    .filter(|f| !self.known.contains(&f.problem))
                    .collect();
                self.known = now;
                if !self.problems || new.is_empty() {
                    return None;
                }
                let titles: Vec<String> = new.iter().map(|f| f.problem.title().into()).collect();
                Some(self.notice(
                    NoticeKind::Problem,
                    "running",
                    format!("{}: {}", self.experiment, titles.join(", ")),
                    format!("{}: {}", self.run_id, new[0].evidence),
                    titles,
                ))
            }
            EventKind::Finished(end) => {
                if let (Some(epoch), Some(accuracy)) =
                    (end.best_epoch, end.best_validation_accuracy)
                {
                    self.best = Some((epoch, accuracy));
                }
                let status = match end.outcome {
                    Outcome::Completed => "finished",
                    Outcome::Stopped => "stopped",
                    Outcome::EarlyStopped => "stopped_early",
                    Outcome::TimeLimit => "time_limit",
                };
                let best = self.best.map_or(String::new(), |(epoch, accuracy)| {
                    format!(", best val acc {:.1}% (epoch {epoch})", accuracy * 100.0)
                });
                Some(self.notice(
                    NoticeKind::Finished,
                    status,
                    format!("{} {}", self.experiment, end.outcome.label()),
                    format!("{}: {} epoch(s){best}", self.run_id, end.epochs_completed),
                    Vec::new(),
                ))
            }
            EventKind::Failed { error } => Some(self.notice(
                NoticeKind::Failed,
                "failed",
                format!("{} failed", self.experiment),
                format!("{}: {error}", self.run_id),
                Vec::new(),
            )),
            _ => None,
        }
    }

    fn notice(
        &self,
        kind: NoticeKind,
        status: &'static str,
        title: String,
        body: String,
        problems: Vec<String>,
    ) -> Notice {
        Notice {
            kind,
            status,
            run_id: self.run_id.clone(),
            experiment: self.experiment.clone(),
            best: self.best,
            problems,
            title: format!("kiln: {title}"),
            body,
        }
    }
}
