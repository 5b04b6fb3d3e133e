//! One line's worth of a run, derived from its event log: state, progress, best and final
//! metrics, the tricks in use.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::diagnose::best_epoch;
use crate::format::{Tricks, thousands};
use crate::protocol::{EpochMetrics, Event, EventKind, HyperParameter, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// A live process is still training it.
    Running,
    Finished,
    Stopped,
    Failed,
    /// The log ends without a final event and nobody is training it (killed, crashed).
    Interrupted,
    /// Stopped before the scheduler's time limit, checkpoint taken: resumable.
    TimedOut,
}

impl RunState {
    pub fn label(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
            RunState::TimedOut => "timed out",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    /// The run directory; set when listed, not stored.
    #[serde(skip)]
    pub path: PathBuf,
    pub experiment: String,
    pub dataset: String,
    /// Time of the first event (UTC, RFC 3339).
    pub started: String,
    pub state: RunState,
    pub epochs_done: usize,
    pub epochs_planned: usize,
    pub best_epoch: Option<usize>,
    pub best_validation_accuracy: Option<f64>,
    pub final_validation_accuracy: Option<f64>,
    /// Train − validation accuracy of the last epoch.
    pub final_gap: Option<f64>,
    /// Dropout in force at the end (it may have changed during the run).
    pub dropout: f64,
    pub batch_norm: bool,
    pub augmentation: bool,
    pub parameters: usize,
    pub seconds: f64,
    /// The error of a failed run.
    pub error: Option<String>,
    /// Why this row may be incomplete (unreadable log, lines skipped).
    pub problem: Option<String>,
    /// The run this one was forked from, and after which of its epochs.
    #[serde(default)]
    pub parent: Option<crate::protocol::ParentRun>,
    /// How many times the run was resumed from a checkpoint.
    #[serde(default)]
    pub resumes: usize,
    /// Where it trained last: host, process, Slurm job.
    #[serde(default)]
    pub placement: Option<crate::protocol::Placement>,
}

impl RunSummary {
    /// An entry for a directory whose log could not be read at all.
    pub fn unreadable(id: &str, path: PathBuf, problem: String) -> Self {
        Self {
            id: id.to_string(),
            path,
            experiment: String::new(),
            dataset: String::new(),
            started: String::new(),
            state: RunState::Interrupted,
            epochs_done: 0,
            epochs_planned: 0,
            best_epoch: None,
            best_validation_accuracy: None,
            final_validation_accuracy: None,
            final_gap: None,
            dropout: 0.0,
            batch_norm: false,
            augmentation: false,
            parameters: 0,
            seconds: 0.0,
            error: None,
            problem: Some(problem),
            parent: None,
            resumes: 0,
            placement: None,
        }
    }

    /// Where the run came from: `fork of RUN@EPOCH`, `resumed 2x`, both, or nothing.
    pub fn lineage(&self) -> Option<String> {
        let fork = self
            .parent
            .as_ref()
            .map(|p| format!("fork of {}@{}", p.run_id, p.epoch));
        let resumed = (self.resumes > 0).then(|| format!("resumed {}x", self.resumes));
        match (fork, resumed) {
            (Some(fork), Some(resumed)) => Some(format!("{fork}, {resumed}")),
            (fork, resumed) => fork.or(resumed),
        }
    }

    /// `drop=0.30 bn aug 207k`: the tricks in use and the model's size.
    pub fn tricks(&self) -> String {
        let tricks = Tricks {
            dropout: self.dropout,
            batch_norm: self.batch_norm,
            augmentation: self.augmentation,
        };
        format!("{} {}", tricks.compact(), thousands(self.parameters))
    }
}

/// The summary of a run from its events (state as the log tells it: a log without a final event
/// reads as interrupted until a live process says otherwise).
pub fn summarise(id: &str, events: &[Event]) -> RunSummary {
    let mut summary = RunSummary::unreadable(id, PathBuf::new(), String::new());
    summary.problem = None;
    for event in events {
        match &event.kind {
            EventKind::RunStarted(start) => {
                summary.experiment = start.experiment.clone();
                summary.dataset = start.dataset.name.clone();
                summary.epochs_planned = start.epochs;
                summary.dropout = start.dropout;
                summary.batch_norm = start.batch_norm;
                summary.augmentation = start.augmentation;
                summary.parameters = start.parameters;
                summary.parent = start.parent.clone();
                summary.placement = start.placement.clone();
            }
            EventKind::FromCheckpoint(from) => {
                // Training went on after whatever ended the log before.
                summary.state = RunState::Interrupted;
                summary.error = None;
                summary.dropout = from.dropout;
                if summary
                    .parent
                    .as_ref()
                    .is_none_or(|p| p.run_id != from.run_id)
                {
                    summary.resumes += 1;
                }
            }
            EventKind::HyperParameterChanged {
                parameter: HyperParameter::Dropout,
                to,
                ..
            } => summary.dropout = *to,
            EventKind::Finished(end) => {
                summary.state = match end.outcome {
                    Outcome::Completed | Outcome::EarlyStopped => RunState::Finished,
                    Outcome::Stopped => RunState::Stopped,
                    Outcome::TimeLimit => RunState::TimedOut,
                };
                summary.seconds = end.seconds;
            }
            EventKind::Failed { error } => {
                summary.state = RunState::Failed;
                summary.error = Some(error.clone());
            }
            _ => {}
        }
    }
    let epochs: Vec<EpochMetrics> = crate::protocol::epoch_history(events);
    summary.started = events.first().map(|e| e.time.clone()).unwrap_or_default();
    if summary.seconds == 0.0 {
        summary.seconds = elapsed(events);
    }
    summary.epochs_done = epochs.len();
    summary.best_epoch = best_epoch(&epochs);
    summary.best_validation_accuracy = summary
        .best_epoch
        .map(|e| epochs[e - 1].validation_accuracy);
    summary.final_validation_accuracy = epochs.last().map(|m| m.validation_accuracy);
    summary.final_gap = epochs.last().map(EpochMetrics::gap);
    summary
}

/// Seconds between the first and the last event.
fn elapsed(events: &[Event]) -> f64 {
    let time =
        |e: Option<&Event>| e.and_then(|e| chrono::DateTime::parse_from_rfc3339(&e.time).ok());
    match (time(events.first()), time(events.last())) {
        (Some(first), Some(last)) => (last - first).as_seconds_f64().max(0.0),
        _ => 0.0,
    }
}
