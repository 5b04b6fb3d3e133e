//! Scripted event streams for front-end tests: a run described in a few calls, with fixed
//! times so screens render the same every time.

use kiln_core::diagnose::{Context, diagnose};
use kiln_core::experiment::MonitorConfig;
use kiln_core::protocol::{
    BackendSummary, BatchProgress, DatasetSummary, EpochMetrics, Event, EventKind, Finding,
    HyperParameter, Outcome, PauseReason, RunFinished, RunStarted,
};

pub const TIME: &str = "2026-11-27T12:00:00.000Z";

pub fn at(epoch: usize, step: u64, kind: EventKind) -> Event {
    Event {
        time: TIME.into(),
        epoch: Some(epoch),
        step: Some(step),
        kind,
    }
}

#[derive(Debug, Clone)]
pub struct Script {
    pub events: Vec<Event>,
    pub total_epochs: usize,
    pub batches: usize,
    /// Epochs finished so far.
    epoch: usize,
    /// Batches finished in the epoch in progress.
    batch: usize,
    step: u64,
    learning_rate: f64,
    dropout: f64,
    experiment: String,
    history: Vec<EpochMetrics>,
    findings: Vec<Finding>,
}

/// Five epochs whose train − validation gap widens: overfitting from epoch 3.
// Used by kiln-screen's tests; kiln's include this file too.
#[allow(dead_code)]
pub const OVERFITTING: [(f64, f64); 5] = [
    (0.80, 0.79),
    (0.90, 0.84),
    (0.96, 0.85),
    (0.99, 0.85),
    (1.0, 0.84),
];

impl Script {
    pub fn new(total_epochs: usize) -> Self {
        Self {
            events: Vec::new(),
            total_epochs,
            batches: 4,
            epoch: 0,
            batch: 0,
            step: 0,
            learning_rate: 1e-3,
            dropout: 0.0,
            experiment: "baseline".into(),
            history: Vec::new(),
            findings: Vec::new(),
        }
    }

    /// The experiment name the run reports.
    // Used by kiln's own tests, which include this file too.
    #[allow(dead_code)]
    pub fn named(mut self, name: &str) -> Self {
        self.experiment = name.into();
        self
    }

    pub fn started(self) -> Self {
        let digits = (0..10).map(|d| d.to_string()).collect();
        self.started_with_classes(digits)
    }

    /// Gives the last epoch event per-class counts from a row-major confusion matrix.
    pub fn class_counts(mut self, matrix: &[u64], classes: usize) -> Self {
        let counts = kiln_core::protocol::ClassCounts::from_matrix(matrix, classes);
        let last = self
            .events
            .iter_mut()
            .rev()
            .find_map(|e| match &mut e.kind {
                EventKind::Epoch(m) => Some(m),
                _ => None,
            })
            .expect("an epoch to add counts to");
        last.classes = Some(counts);
        self
    }

    pub fn started_with_classes(mut self, classes: Vec<String>) -> Self {
        self.events.push(Event {
            time: TIME.into(),
            epoch: None,
            step: Some(0),
            kind: EventKind::RunStarted(Box::new(RunStarted {
                run_id: "20261127-120000-baseline".into(),
                experiment: self.experiment.clone(),
                dataset: DatasetSummary {
                    name: "mnist-5k".into(),
                    classes,
                    train_images: 1000,
                    validation_images: 1000,
                    channels: 1,
                    height: 28,
                    width: 28,
                    skipped: 0,
                },
                backend: BackendSummary {
                    name: "flex".into(),
                    device: "CPU, 2 threads".into(),
                    reason: "no GPU adapter was found".into(),
                    ..Default::default()
                },
                epochs: self.total_epochs,
                batches_per_epoch: self.batches,
                batch_size: 250,
                learning_rate: self.learning_rate,
                dropout: self.dropout,
                batch_norm: false,
                augmentation: false,
                parameters: 206_922,
                gap_threshold: 0.05,
                patience: 3,
                parent: None,
                placement: None,
                schedule: None,
                early_stopping: None,
                controls: Vec::new(),
                backbone: None,
                backbone_parameters: None,
                backbone_frozen: false,
            })),
        });
        self
    }

    /// `n` training batches of the epoch in progress.
    pub fn batches(mut self, n: usize) -> Self {
        for _ in 0..n {
            self.batch += 1;
            self.step += 1;
            let loss = 2.3 / (1.0 + self.step as f64 * 0.3) + 0.02 * (self.step % 3) as f64;
            self.events.push(at(
                self.epoch + 1,
                self.step,
                EventKind::Batch(BatchProgress {
                    batch: self.batch,
                    batches: self.batches,
                    loss,
                    images_per_second: 1500.0 + 10.0 * (self.step % 5) as f64,
                }),
            ));
        }
        self
    }

    /// Whole epochs with the given (train, validation) accuracies.
    pub fn epochs(mut self, accuracies: &[(f64, f64)]) -> Self {
        for &(train, validation) in accuracies {
            let remaining = self.batches - self.batch;
            self = self.batches(remaining);
            self.epoch += 1;
            self.batch = 0;
            let metrics = EpochMetrics {
                train_loss: (1.0 - train) * 2.0 + 0.01,
                train_accuracy: train,
                validation_loss: (1.0 - validation) * 2.0 + 0.05 * self.epoch as f64,
                validation_accuracy: validation,
                learning_rate: self.learning_rate,
                dropout: self.dropout,
                seconds: 2.0,
                images_per_second: 500.0,
                classes: None,
            };
            self.history.push(metrics.clone());
            self.events
                .push(at(self.epoch, self.step, EventKind::Epoch(metrics)));
            // As the trainer does: a diagnosis event whenever the findings change.
            let findings = diagnose(&self.history, &self.context());
            if findings != self.findings {
                self.findings = findings.clone();
                self.events
                    .push(at(self.epoch, self.step, EventKind::Diagnosis { findings }));
            }
        }
        self
    }

    fn context(&self) -> Context {
        Context {
            monitor: MonitorConfig::default(),
            class_counts: vec![100; 10],
            parameters: 206_922,
            dropout: self.dropout,
            learning_rate: self.learning_rate,
            batch_norm: false,
            augmentation: false,
            conv_channels: vec![16, 32],
            dense: vec![128],
            epochs: self.total_epochs,
            class_names: (0..10).map(|d| d.to_string()).collect(),
            backbone: None,
            pretrained: false,
            image_side: 28,
            controls: Default::default(),
        }
    }

    pub fn change(mut self, parameter: HyperParameter, from: f64, to: f64) -> Self {
        match parameter {
            HyperParameter::Dropout => self.dropout = to,
            HyperParameter::LearningRate => self.learning_rate = to,
            HyperParameter::BackboneFrozen => {}
        }
        self.events.push(at(
            self.epoch + 1,
            self.step,
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            },
        ));
        self
    }

    pub fn paused(mut self) -> Self {
        self.events.push(at(
            self.epoch + 1,
            self.step,
            EventKind::Paused {
                reason: PauseReason::Requested,
            },
        ));
        self
    }

    pub fn warning(mut self, message: &str) -> Self {
        self.events.push(at(
            self.epoch + 1,
            self.step,
            EventKind::Warning {
                message: message.into(),
            },
        ));
        self
    }

    pub fn finished(mut self, outcome: Outcome, epochs_completed: usize) -> Self {
        self.events.push(at(
            self.epoch.max(1),
            self.step,
            EventKind::CheckpointWritten {
                path: format!("checkpoints/epoch-{:04}-step-{:07}", self.epoch, self.step),
            },
        ));
        self.events.push(at(
            self.epoch.max(1),
            self.step,
            EventKind::Finished(RunFinished {
                outcome,
                epochs_completed,
                best_epoch: None,
                best_validation_accuracy: None,
                seconds: 2.0 * epochs_completed as f64,
                restored_epoch: None,
            }),
        ));
        self
    }
}
