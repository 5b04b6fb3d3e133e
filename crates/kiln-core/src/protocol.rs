//! The messages between the front end and the training thread: `Command`s in, `Event`s out.
//!
//! Plain data with no burn or terminal types, so a live run and a replayed log are rendered from
//! the same values. Events are also the lines of `events.jsonl`.

use serde::{Deserialize, Serialize};

/// What the front end asks of the training thread; applied at the next batch boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Pause,
    Resume,
    SetDropout {
        value: f64,
    },
    SetLearningRate {
        value: f64,
    },
    /// Freezes (`true`) or unfreezes the backbone of a model that has one; the choice holds
    /// from then on, over `model.freeze_epochs`.
    SetBackboneFrozen {
        frozen: bool,
    },
    Checkpoint,
    Stop,
    /// The scheduler's time limit is near (Slurm's `--signal`): stop as `Stop` does —
    /// checkpoint, final event — and end as timed out, so the run can be resumed later.
    TimeLimit,
}

impl Command {
    /// Whether a run can take the value it carries; the error says what is expected. The
    /// trainer, the control socket and the screen's prompt apply the same rule.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Command::SetDropout { value }
                if !(value.is_finite() && (0.0..1.0).contains(&value)) =>
            {
                Err(format!(
                    "dropout {value} rejected: expected a probability in [0, 1)"
                ))
            }
            Command::SetLearningRate { value } if !(value.is_finite() && value > 0.0) => Err(
                format!("learning rate {value} rejected: expected a positive number"),
            ),
            _ => Ok(()),
        }
    }
}

/// One thing that happened in a run, stamped with wall time and position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// UTC wall time, RFC 3339 with milliseconds.
    pub time: String,
    /// 1-based epoch the event belongs to; absent before training starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<usize>,
    /// Number of optimiser steps taken so far in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The payload of an [`Event`]; `kind` in the JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted(Box<RunStarted>),
    Batch(BatchProgress),
    Epoch(EpochMetrics),
    HyperParameterChanged {
        parameter: HyperParameter,
        from: f64,
        to: f64,
    },
    Paused {
        reason: PauseReason,
    },
    Resumed,
    CheckpointWritten {
        path: String,
    },
    Warning {
        message: String,
    },
    /// The loss became NaN or infinite; the run is paused, not ended.
    Diverged {
        /// `NaN`, `inf` or `-inf` (JSON has no such numbers).
        loss: String,
    },
    /// The set of active findings changed (after an epoch); empty when all is well.
    Diagnosis {
        findings: Vec<Finding>,
    },
    Finished(RunFinished),
    Failed {
        error: String,
    },
    /// Training continues from a checkpoint: a resumed run (in its own log) or a fork (after
    /// the parent's epochs it inherits). Epochs after `epochs_completed` logged earlier are
    /// superseded by the ones that follow.
    FromCheckpoint(Box<FromCheckpoint>),
    /// What the machine is doing while the run trains: sampled every few seconds and at each
    /// epoch's end.
    Machine(MachineSample),
}

/// The training process and its GPU over the last few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineSample {
    /// CPU time of the training process per second of wall time (100 = one core busy).
    pub cpu_percent: f64,
    /// Resident memory of the training process, MB.
    pub memory_mb: f64,
    /// Share of the interval the trainer waited for the loader's next batch (0–1): near 1, the
    /// data path is what limits training.
    pub loader_wait: f64,
    /// The first NVIDIA GPU, where a driver answers (NVML); absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub name: String,
    /// Share of the last sample period the GPU ran a kernel, in percent.
    pub utilization_percent: u32,
    pub memory_used_mb: f64,
    pub memory_total_mb: f64,
    pub temperature_c: u32,
}

/// Where a resumed or forked run picked up, with the restored weights' validation metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FromCheckpoint {
    /// The run whose checkpoint was loaded (this run itself when resumed).
    pub run_id: String,
    /// The checkpoint folder, relative to that run's directory.
    pub checkpoint: String,
    pub epochs_completed: usize,
    /// Batches of the next epoch already trained (a checkpoint taken mid-epoch). The event's
    /// own `step` is the checkpoint's.
    pub batches_done: usize,
    pub learning_rate: f64,
    pub dropout: f64,
    pub validation_loss: f64,
    pub validation_accuracy: f64,
    pub backend: BackendSummary,
    /// Whether the backbone trains on frozen; absent for a model without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_frozen: Option<bool>,
}

/// The run a fork started from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRun {
    pub run_id: String,
    /// The parent's epochs the fork inherited.
    pub epoch: usize,
}

/// The epoch events of a log that still count: a checkpoint restart drops the epochs logged
/// after its checkpoint, which are trained again.
pub fn epoch_events<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Vec<(&'a Event, &'a EpochMetrics)> {
    let mut epochs = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::Epoch(metrics) => epochs.push((event, metrics)),
            EventKind::FromCheckpoint(from) => epochs.truncate(from.epochs_completed),
            _ => {}
        }
    }
    epochs
}

/// The run's class names, from its start event (empty if the log has none).
pub fn class_names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RunStarted(s) => Some(s.dataset.classes.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Per-epoch metrics as a log tells them (see [`epoch_events`]).
pub fn epoch_history<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<EpochMetrics> {
    epoch_events(events)
        .into_iter()
        .map(|(_, metrics)| metrics.clone())
        .collect()
}

/// One of the four problems of the article (plus divergence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    Overfitting,
    Underfitting,
    SlowConvergence,
    TooLittleData,
    Divergence,
    /// One class's recall far below the others'.
    WeakClass,
}

impl Problem {
    pub fn title(self) -> &'static str {
        match self {
            Problem::Overfitting => "overfitting",
            Problem::Underfitting => "underfitting",
            Problem::SlowConvergence => "slow convergence",
            Problem::TooLittleData => "too little data",
            Problem::Divergence => "diverged",
            Problem::WeakClass => "weak class",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Notice,
    Warning,
    Critical,
}

/// A problem a run has, since when, the numbers that show it, and what to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub problem: Problem,
    pub severity: Severity,
    /// First epoch of the streak that raised it (0: before training).
    pub since_epoch: usize,
    pub evidence: String,
    pub remedies: Vec<Remedy>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remedy {
    pub text: String,
    pub fix: Fix,
}

/// How a remedy is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fix", rename_all = "snake_case")]
pub enum Fix {
    /// Live: a command to the running trainer.
    SetDropout {
        value: f64,
    },
    SetLearningRate {
        value: f64,
    },
    /// Live: stop now (the best epoch is behind us).
    Stop,
    /// Needs a new model or data pipeline: a new experiment file that extends this one with
    /// these settings (dotted key, TOML value).
    NewExperiment {
        suffix: String,
        settings: Vec<(String, String)>,
    },
}

impl Fix {
    pub fn is_live(&self) -> bool {
        !matches!(self, Fix::NewExperiment { .. })
    }
}

/// Everything the front end needs to lay out the screen for a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: String,
    pub experiment: String,
    pub dataset: DatasetSummary,
    pub backend: BackendSummary,
    pub epochs: usize,
    pub batches_per_epoch: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub dropout: f64,
    pub batch_norm: bool,
    pub augmentation: bool,
    pub parameters: usize,
    /// Train − validation accuracy gap that counts as overfitting.
    pub gap_threshold: f64,
    /// Epochs a trend must hold before a warning appears or clears.
    pub patience: usize,
    /// Set when this run is a fork of another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRun>,
    /// Where it trains: the host and process, and the Slurm job when a scheduler started it
    /// (a viewer on another host needs a bridge to reach its control socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The learning-rate schedule, when the rate is not constant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::ScheduledRate>,
    /// When the run stops early, if it may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// The backbone the model is (`resnet18`, …); none for kiln's CNN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<String>,
    /// The backbone's trainable parameters (of `parameters`), and whether it starts frozen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_parameters: Option<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backbone_frozen: bool,
    /// The training controls in force, in words (`class weights balanced (0.55, 5.50)`,
    /// `label smoothing 0.1`, `balanced sampler`, `gradient norm ≤ 1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
}

/// A run's early stopping: after `patience` epochs in which `metric` did not improve by
/// `min_delta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    pub patience: usize,
    pub min_delta: f64,
    pub metric: crate::experiment::BestMetric,
}

/// The machine and process a run trains in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub host: String,
    pub pid: u32,
    /// `SLURM_JOB_ID`, or `ARRAY_JOB_ID_TASK_ID` for an array task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub name: String,
    pub classes: Vec<String>,
    pub train_images: usize,
    pub validation_images: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Files that could not be decoded and were left out.
    pub skipped: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendSummary {
    /// `cuda`, `wgpu`, `flex` (burn's CPU backend) or `libtorch`.
    pub name: String,
    pub device: String,
    /// Why this backend was chosen, in plain words.
    pub reason: String,
    /// The number format training computes in, and how (`f32 (TF32 tensor cores …)`, `bf16
    /// mixed …`); empty in logs written before kiln recorded it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub precision: String,
    /// Each faster backend passed over, with why (`cuda: no libcuda.so.1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl BackendSummary {
    /// Why this backend, and why not each one passed over: the reason, then `(skipped …)`.
    pub fn reason_in_full(&self) -> String {
        if self.skipped.is_empty() {
            self.reason.clone()
        } else {
            format!("{} (skipped {})", self.reason, self.skipped.join("; "))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchProgress {
    /// 1-based batch index within the epoch.
    pub batch: usize,
    pub batches: usize,
    pub loss: f64,
    pub images_per_second: f64,
}

/// Whole-split metrics of one epoch (weighted by batch size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub validation_loss: f64,
    pub validation_accuracy: f64,
    pub learning_rate: f64,
    pub dropout: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    /// Per-class validation counts (logs written before kiln kept them have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassCounts>,
}

/// Per-class counts of one evaluation: enough for recall, precision and F1 per class, and the
/// confusion matrix itself for up to [`ClassCounts::MAX_MATRIX_CLASSES`] classes (a matrix
/// grows with the square of the classes; past that the log keeps the three vectors only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassCounts {
    /// Images of each true class.
    pub support: Vec<u64>,
    /// Images of each class predicted as that class (the matrix's diagonal).
    pub correct: Vec<u64>,
    /// Images predicted as each class (the matrix's column sums).
    pub predicted: Vec<u64>,
    /// Rows: true class; columns: predicted class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<u64>>>,
}

impl ClassCounts {
    pub const MAX_MATRIX_CLASSES: usize = 32;

    /// The counts of a row-major `classes × classes` confusion matrix (rows: true class).
    pub fn from_matrix(matrix: &[u64], classes: usize) -> Self {
        let rows: Vec<Vec<u64>> = matrix.chunks(classes.max(1)).map(<[u64]>::to_vec).collect();
        let support = rows.iter().map(|row| row.iter().sum()).collect();
        let correct = (0..classes).map(|c| rows[c][c]).collect();
        let predicted = (0..classes)
            .map(|c| rows.iter().map(|row| row[c]).sum())
            .collect();
        Self {
            support,
            correct,
            predicted,
            confusion: (classes <= Self::MAX_MATRIX_CLASSES).then_some(rows),
        }
    }

    pub fn classes(&self) -> usize {
        self.support.len()
    }
}

impl EpochMetrics {
    /// Train minus validation accuracy: the overfitting gap.
    pub fn gap(&self) -> f64 {
        self.train_accuracy - self.validation_accuracy
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HyperParameter {
    Dropout,
    LearningRate,
    /// 1 when the backbone is frozen, 0 when it trains.
    BackboneFrozen,
}

impl HyperParameter {
    /// Its name in a sentence: `dropout`, `learning rate`.
    pub fn label(self) -> &'static str {
        match self {
            HyperParameter::Dropout => "dropout",
            HyperParameter::LearningRate => "learning rate",
            HyperParameter::BackboneFrozen => "backbone frozen",
        }
    }

    /// A switch's change in words (`backbone frozen`, `backbone unfrozen`); `None` for a
    /// parameter with a numeric value.
    pub fn switched(self, to: f64) -> Option<&'static str> {
        match self {
            HyperParameter::BackboneFrozen if to != 0.0 => Some("backbone frozen"),
            HyperParameter::BackboneFrozen => Some("backbone unfrozen"),
            HyperParameter::Dropout | HyperParameter::LearningRate => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// The user asked for it.
    Requested,
    /// The loss became NaN or infinite.
    Diverged,
    /// The log or a checkpoint could not be written (disk full, say): paused so nothing is
    /// lost; resuming retries the writes.
    Storage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    pub outcome: Outcome,
    pub epochs_completed: usize,
    /// Epoch with the highest validation accuracy, if any epoch completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_validation_accuracy: Option<f64>,
    pub seconds: f64,
    /// Stopped early: the epoch whose weights became the run's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_epoch: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All epochs ran.
    Completed,
    /// The user stopped the run.
    Stopped,
    /// Stopped before the scheduler's time limit; resumable from its last checkpoint.
    TimeLimit,
    /// Early stopping ended it: the metric stopped improving.
    EarlyStopped,
}

impl Outcome {
    /// How the run ended, in the words of progress lines and the activity log.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "finished",
            Outcome::Stopped => "stopped",
            Outcome::TimeLimit => "interrupted: time limit",
            Outcome::EarlyStopped => "stopped early",
        }
    }
}
