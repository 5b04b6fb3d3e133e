//! What the screen knows about one run, built only from its events, so a live run and a replayed
//! log produce the same state.

use super::words::{Context, Detail, Level, words};
use crate::diagnose;
use crate::protocol::{
    EpochMetrics, Event, EventKind, Finding, HyperParameter, MachineSample, Outcome, PauseReason,
    RunFinished, RunStarted,
};
use crate::schedule::Plan;

/// Weight of the newest batch in the smoothed loss and throughput.
const SMOOTHING: f64 = 0.1;

#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    Starting,
    Running,
    Paused,
    /// Paused by the trainer because the loss became NaN or infinite.
    Diverged,
    Finished(Outcome),
    Failed(String),
}

impl RunStatus {
    /// How a run that shows this status ended, for a front end that stops watching it.
    pub fn end(&self) -> RunEnd {
        match self {
            RunStatus::Finished(_) => RunEnd::Finished,
            RunStatus::Failed(_) => RunEnd::Failed,
            _ => RunEnd::Lost,
        }
    }
}

/// How a followed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Finished,
    Failed,
    /// The event stream closed without a final event.
    Lost,
}

/// A hyper-parameter change, where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub epoch: usize,
    pub step: u64,
    pub parameter: HyperParameter,
    pub from: f64,
    pub to: f64,
}

impl Change {
    pub fn describe(&self) -> String {
        super::words::change(self.parameter, self.from, self.to)
    }
}

/// One line of the activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub epoch: Option<usize>,
    pub step: Option<u64>,
    pub text: String,
    pub level: Level,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub started: Option<RunStarted>,
    pub status: RunStatus,
    /// Epoch in progress (1-based); 0 before the first batch.
    pub epoch: usize,
    /// Last finished batch within the epoch.
    pub batch: usize,
    pub step: u64,
    /// Smoothed training loss after every batch.
    pub train_loss: Vec<f64>,
    pub last_batch_loss: Option<f64>,
    /// Smoothed images per second.
    pub throughput: Option<f64>,
    pub epochs: Vec<EpochMetrics>,
    pub changes: Vec<Change>,
    pub activity: Vec<Activity>,
    pub learning_rate: f64,
    pub dropout: f64,
    /// Whether the backbone is frozen now (false for a model without one).
    pub backbone_frozen: bool,
    pub finished: Option<RunFinished>,
    pub divergence: Option<Finding>,
    /// The trainer's latest diagnosis.
    pub diagnosis: Vec<Finding>,
    /// The epoch of the newest checkpoint written.
    pub last_checkpoint: Option<usize>,
    /// The machine's latest sample (CPU, memory, loader wait, GPU).
    pub machine: Option<MachineSample>,
    /// Where a resumed or forked run took over (its first step's index) and the rate in force
    /// there.
    pub restarted_at: Option<(usize, f64)>,
}

impl Default for RunView {
    fn default() -> Self {
        Self {
            started: None,
            status: RunStatus::Starting,
            epoch: 0,
            batch: 0,
            step: 0,
            train_loss: Vec::new(),
            last_batch_loss: None,
            throughput: None,
            epochs: Vec::new(),
            changes: Vec::new(),
            activity: Vec::new(),
            learning_rate: 0.0,
            dropout: 0.0,
            backbone_frozen: false,
            finished: None,
            divergence: None,
            diagnosis: Vec::new(),
            last_checkpoint: None,
            machine: None,
            restarted_at: None,
        }
    }
}

impl RunView {
    /// The state after a whole event log.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut view = RunView::default();
        for event in events {
            view.apply(event);
        }
        view
    }

    pub fn apply(&mut self, event: &Event) {
        let context = Context {
            total_epochs: self.total_epochs(),
            run_dir: "",
            parent: self.started.as_ref().and_then(|s| s.parent.as_ref()),
            findings: &self.diagnosis,
        };
        let notes = words(event, Detail::Note, &context);
        self.activity.extend(notes.into_iter().map(|said| Activity {
            epoch: event.epoch,
            step: event.step,
            text: said.text,
            level: said.level,
        }));
        self.fold(event);
    }

    /// The state the event changes (its words are [`words`]'s).
    fn fold(&mut self, event: &Event) {
        if let Some(step) = event.step {
            self.step = step;
        }
        match &event.kind {
            EventKind::RunStarted(start) => {
                self.learning_rate = start.learning_rate;
                self.dropout = start.dropout;
                self.backbone_frozen = start.backbone_frozen;
                self.status = RunStatus::Running;
                self.started = Some(start.as_ref().clone());
            }
            EventKind::Batch(batch) => {
                self.epoch = event.epoch.unwrap_or(self.epoch);
                self.batch = batch.batch;
                let smoothed = match self.train_loss.last() {
                    Some(previous) if batch.loss.is_finite() => {
                        previous + SMOOTHING * (batch.loss - previous)
                    }
                    _ => batch.loss,
                };
                self.train_loss.push(smoothed);
                self.last_batch_loss = Some(batch.loss);
                self.throughput = Some(match self.throughput {
                    Some(previous) => previous + SMOOTHING * (batch.images_per_second - previous),
                    None => batch.images_per_second,
                });
                if self.status == RunStatus::Diverged {
                    self.status = RunStatus::Running;
                }
            }
            EventKind::Epoch(metrics) => {
                self.epoch = event.epoch.unwrap_or(self.epoch);
                // A scheduled rate moves every step; the epoch says where it stands.
                self.learning_rate = metrics.learning_rate;
                self.epochs.push(metrics.clone());
            }
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            } => {
                match parameter {
                    HyperParameter::Dropout => self.dropout = *to,
                    HyperParameter::LearningRate => self.learning_rate = *to,
                    HyperParameter::BackboneFrozen => self.backbone_frozen = *to != 0.0,
                }
                self.changes.push(Change {
                    epoch: event.epoch.unwrap_or(self.epoch),
                    step: event.step.unwrap_or(self.step),
                    parameter: *parameter,
                    from: *from,
                    to: *to,
                });
            }
            EventKind::Paused { reason } => {
                self.status = match reason {
                    PauseReason::Requested | PauseReason::Storage => RunStatus::Paused,
                    PauseReason::Diverged => RunStatus::Diverged,
                };
            }
            EventKind::Machine(sample) => self.machine = Some(sample.clone()),
            EventKind::Resumed => {
                self.status = RunStatus::Running;
                self.divergence = None;
            }
            EventKind::CheckpointWritten { .. } => {
                self.last_checkpoint = Some(event.epoch.unwrap_or(self.epoch));
            }
            EventKind::Warning { .. } => {}
            EventKind::Diverged { loss } => {
                self.divergence = Some(diagnose::divergence(
                    event.epoch.unwrap_or(self.epoch),
                    loss,
                    self.learning_rate,
                ));
            }
            EventKind::Diagnosis { findings } => self.diagnosis = findings.clone(),
            EventKind::Finished(end) => {
                self.status = RunStatus::Finished(end.outcome);
                self.finished = Some(end.clone());
            }
            EventKind::Failed { error } => self.status = RunStatus::Failed(error.clone()),
            EventKind::FromCheckpoint(from) => {
                // Epochs logged after the checkpoint are trained again: theirs are superseded.
                self.epochs.truncate(from.epochs_completed);
                self.epoch = from.epochs_completed;
                self.learning_rate = from.learning_rate;
                self.dropout = from.dropout;
                if let Some(frozen) = from.backbone_frozen {
                    self.backbone_frozen = frozen;
                }
                self.status = RunStatus::Running;
                self.finished = None;
                let per_epoch = self.batches_per_epoch();
                let first = from.epochs_completed * per_epoch + from.batches_done;
                self.restarted_at = Some((first, from.learning_rate));
            }
        }
    }

    /// The learning rate at every step of the run as planned now (the schedule, scaled by the
    /// live changes from their step on, the plateau schedule decided by the epochs so far);
    /// `None` for a constant rate.
    pub fn planned_rates(&self) -> Option<Vec<f64>> {
        let start = self.started.as_ref()?;
        let scheduled = start.schedule.as_ref()?;
        let plan = Plan {
            schedule: &scheduled.config,
            base: scheduled.base,
            batches_per_epoch: start.batches_per_epoch,
            epochs: start.epochs,
        };
        let losses: Vec<f64> = self.epochs.iter().map(|m| m.validation_loss).collect();
        let mut rates = plan.planned(&losses);
        // A rate set at step `from` (the steps taken before it) scales the rest from there.
        let mut rescale = |from: usize, rate: f64| {
            if let Some(&now) = rates.get(from).filter(|r| **r > 0.0) {
                let factor = rate / now;
                rates[from..].iter_mut().for_each(|r| *r *= factor);
            }
        };
        if let Some((from, rate)) = self.restarted_at {
            rescale(from, rate);
        }
        for change in self
            .changes
            .iter()
            .filter(|c| c.parameter == HyperParameter::LearningRate)
        {
            rescale(change.step as usize, change.to);
        }
        Some(rates)
    }

    /// Early stopping's count: epochs without improvement so far, and the patience; `None` for
    /// a run that does not stop early.
    pub fn patience(&self) -> Option<(usize, usize)> {
        let stop = self.started.as_ref()?.early_stopping?;
        let waited =
            diagnose::epochs_without_improvement(&self.epochs, stop.metric, stop.min_delta);
        Some((waited, stop.patience))
    }

    /// The run's class names (empty before its start event).
    pub fn class_names(&self) -> &[String] {
        self.started
            .as_ref()
            .map_or(&[], |s| s.dataset.classes.as_slice())
    }

    /// The newest epoch with per-class counts, and them.
    pub fn latest_classes(&self) -> Option<(usize, &crate::protocol::ClassCounts)> {
        self.epochs
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, m)| m.classes.as_ref().map(|c| (i + 1, c)))
    }

    /// Parameters that train now and those frozen (the backbone's while it is frozen).
    pub fn parameter_split(&self) -> Option<(usize, usize)> {
        let start = self.started.as_ref()?;
        let frozen = match start.backbone_parameters {
            Some(backbone) if self.backbone_frozen => backbone.min(start.parameters),
            _ => 0,
        };
        Some((start.parameters - frozen, frozen))
    }

    pub fn total_epochs(&self) -> usize {
        self.started.as_ref().map_or(0, |s| s.epochs)
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.started.as_ref().map_or(0, |s| s.batches_per_epoch)
    }

    /// Whether the trainer is still working (not finished or failed).
    pub fn is_active(&self) -> bool {
        !matches!(self.status, RunStatus::Finished(_) | RunStatus::Failed(_))
    }

    /// 1-based epoch with the best validation accuracy.
    pub fn best_epoch(&self) -> Option<usize> {
        diagnose::best_epoch(&self.epochs)
    }

    /// Fraction of the whole run done, from finished batches.
    pub fn progress(&self) -> f64 {
        let total = self.total_epochs() * self.batches_per_epoch();
        if total == 0 {
            return 0.0;
        }
        if matches!(self.status, RunStatus::Finished(Outcome::Completed)) {
            return 1.0;
        }
        let done = self.epochs.len() * self.batches_per_epoch()
            + if self.epoch > self.epochs.len() {
                self.batch
            } else {
                0
            };
        (done as f64 / total as f64).min(1.0)
    }

    /// Fraction of the current epoch done.
    pub fn epoch_progress(&self) -> f64 {
        let batches = self.batches_per_epoch();
        if batches == 0 || self.epoch <= self.epochs.len() {
            return if self.epoch > 0 { 1.0 } else { 0.0 };
        }
        self.batch as f64 / batches as f64
    }

    /// Seconds left, from the mean epoch time (or the throughput during the first epoch); none
    /// while the run is not training (a paused run's clock has stopped).
    pub fn eta_seconds(&self) -> Option<f64> {
        if self.status != RunStatus::Running {
            return None;
        }
        let total = self.total_epochs() as f64;
        let remaining = total * (1.0 - self.progress());
        if !self.epochs.is_empty() {
            let mean =
                self.epochs.iter().map(|m| m.seconds).sum::<f64>() / self.epochs.len() as f64;
            return Some(mean * remaining);
        }
        let started = self.started.as_ref()?;
        let per_second = self.throughput?;
        let images = remaining * (started.dataset.train_images as f64);
        (per_second > 0.0).then(|| images / per_second)
    }

    /// What the diagnosis panel shows: a divergence first, then the trainer's latest findings.
    pub fn findings(&self) -> Vec<Finding> {
        self.divergence
            .iter()
            .chain(&self.diagnosis)
            .cloned()
            .collect()
    }

    /// One value of every finished epoch as chart points: (epoch, value), finite values only.
    pub fn epoch_series(&self, value: fn(&EpochMetrics) -> f64) -> Vec<(f64, f64)> {
        self.epochs
            .iter()
            .enumerate()
            .map(|(i, m)| ((i + 1) as f64, value(m)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    }

    /// Changes that happened during epoch `epoch` (1-based).
    pub fn changes_in(&self, epoch: usize) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.epoch == epoch)
    }
}
