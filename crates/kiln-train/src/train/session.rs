//! One run on the training thread: the loop that trains, evaluates and checkpoints, and the
//! commands it applies at batch boundaries. Set-up is `super::setup`, disk trouble
//! `super::storage`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::module::ParamGroup;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use crossbeam_channel::{Receiver, TryRecvError};

use super::error::TrainError;
use super::eval::ValidationSet;
use super::readback::PendingRead;
use super::sink::EventSink;
use crate::data::{self, Dataset, Loader, LoaderPlan};
use crate::diagnose;
use crate::experiment::Experiment;
use crate::model::{Classifier, ModelShape};
use crate::protocol::{
    BatchProgress, Command, EpochMetrics, EventKind, Finding, HyperParameter, Outcome, PauseReason,
    RunFinished,
};
use crate::runs::RunDir;
use crate::schedule::{At, Plan};

/// A batch whose step is queued but whose loss and accuracy are not read yet: it is settled
/// once the next batch's step is queued, so the device never waits for the host between
/// batches, or before anything that must see the run as it stands (evaluation, a command).
pub(super) struct InFlight {
    /// 1-based index within the epoch.
    batch: usize,
    images: usize,
    queued: Instant,
    stats: PendingRead,
    /// The model and optimiser before this batch's step, put back if its loss is not finite.
    /// (burn's tensors are shared handles: keeping them costs one copy of the weights only
    /// while the step writes new ones.)
    before: (Classifier, ModuleOptimizer),
}

/// The epoch's sums over its settled batches.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct EpochSums {
    loss: f64,
    correct: f64,
    seen: usize,
}

/// How often a training run reports the machine's state (CPU, memory, loader, GPU).
const MACHINE_SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Whether the loop goes on after the commands at a batch boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The run ends now, as this outcome says (stopped, or before a time limit).
    Stop(Outcome),
}

/// Where the run stands.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Position {
    /// Optimiser steps taken over the whole run.
    pub step: u64,
    /// Epochs fully trained and evaluated.
    pub epochs_completed: usize,
    /// The epoch in progress and its batches trained so far (for mid-epoch checkpoints).
    pub epoch: usize,
    pub batches_done: usize,
}

/// Time that epoch timings leave out or add.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Clock {
    /// Time spent paused or writing checkpoints in this epoch.
    pub idle: Duration,
    /// Training time before this process took over (a resumed run).
    pub prior_seconds: f64,
}

/// What a full disk has held back.
#[derive(Debug, Clone, Default)]
pub(super) struct Storage {
    /// Paused because the disk could not be written; resuming retries first.
    pub paused: bool,
    /// The epoch whose checkpoint failed and is written again on resume.
    pub blocked_checkpoint: Option<usize>,
    /// The checkpoint folder this run was resumed from: kept by the retention policy.
    pub resumed_from: Option<String>,
}

/// Why a checkpoint is written, which decides what a failure does and whether it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// At an epoch's end: a failure pauses the run.
    EpochEnd,
    /// By hand (`c`): kept whatever the retention policy says; a failure pauses the run.
    Requested,
    /// At the run's end, or written again after a full disk: a failure is a warning.
    Last,
}

pub(super) struct Session {
    pub experiment: Experiment,
    pub run: RunDir,
    pub commands: Receiver<Command>,
    pub device: Device,
    pub train_device: Device,
    pub dataset: Arc<Dataset>,
    pub loader_plan: LoaderPlan,
    pub validation: ValidationSet,
    pub shape: ModelShape,
    /// Taken out only during an optimiser step.
    pub model: Option<Classifier>,
    pub optimizer: ModuleOptimizer,
    /// The rate in force: the schedule's rate at the last step taken, times `lr_scale`.
    pub learning_rate: f64,
    /// The factor live rate changes put on the schedule from their step on.
    pub lr_scale: f64,
    /// The backbone's parameters, when they learn at `model.backbone_lr_factor` times the rate.
    pub backbone_rate_group: Option<ParamGroup>,
    /// The backbone frozen or unfrozen by hand (`b`), which holds over `model.freeze_epochs`.
    pub frozen_by_hand: Option<bool>,
    pub paused: bool,
    pub clock: Clock,
    pub position: Position,
    pub storage: Storage,
    pub history: Vec<EpochMetrics>,
    /// What the diagnosis rules need besides the history.
    pub context: diagnose::Context,
    /// The findings last reported, so only changes become events.
    pub findings: Vec<Finding>,
    /// Samples the machine between batches.
    pub machine: crate::machine::Sampler,
    /// The batch whose loss is still being read.
    pub in_flight: Option<InFlight>,
    /// With early stopping on: the best epoch so far and its model (shared tensors: holding it
    /// costs one copy of the weights only while later steps write new ones).
    pub best_model: Option<(usize, Classifier)>,
    /// The training loss's class weights (none: unweighted).
    pub class_weights: Option<Vec<f64>>,
    /// When the last batch was settled (its images per second count from there).
    pub last_settled: Option<Instant>,
    pub sums: EpochSums,
}

impl Session {
    pub(super) fn model(&self) -> &Classifier {
        self.model
            .as_ref()
            .expect("the model is only taken out during an optimiser step")
    }

    /// Trains from where set-up left the run to its last epoch or a stop.
    pub(super) fn train(&mut self, sink: &mut EventSink) -> Result<(), TrainError> {
        let started = Instant::now();
        let loader = Loader::spawn(self.dataset.clone(), self.loader_plan.clone())
            .map_err(TrainError::LoaderStart)?;
        let loss_fn = super::loss::training_loss(
            &self.experiment.train,
            self.class_weights.as_deref(),
            &self.train_device,
        );
        let mut outcome = Outcome::Completed;
        for epoch in self.loader_plan.first_epoch..=self.experiment.train.epochs {
            if let Flow::Stop(how) = self.train_epoch(sink, &loader, &loss_fn, epoch)? {
                outcome = how;
                break;
            }
        }
        drop(loader);
        // Stopped early: the run's model becomes the best epoch's.
        let restored_epoch = match (outcome, self.best_model.take()) {
            (Outcome::EarlyStopped, Some((epoch, best))) => {
                self.model = Some(best);
                Some(epoch)
            }
            _ => None,
        };
        // At the epoch in progress, so a stopped run resumes after its last trained batch.
        let last_epoch = self.position.epoch.max(1);
        self.checkpoint(sink, last_epoch, Taken::Last);
        let best = diagnose::best_epoch(&self.history);
        sink.emit(
            Some(self.position.epochs_completed),
            Some(self.position.step),
            EventKind::Finished(RunFinished {
                outcome,
                epochs_completed: self.position.epochs_completed,
                best_epoch: best,
                best_validation_accuracy: best.map(|e| self.history[e - 1].validation_accuracy),
                seconds: self.clock.prior_seconds + started.elapsed().as_secs_f64(),
                restored_epoch,
            }),
        );
        Ok(())
    }

    /// Trains one epoch (from its first untrained batch), then evaluates, diagnoses and
    /// checkpoints it; stops early when a command says so.
    fn train_epoch(
        &mut self,
        sink: &mut EventSink,
        loader: &Loader,
        loss_fn: &CrossEntropyLoss,
        epoch: usize,
    ) -> Result<Flow, TrainError> {
        let epoch_start = Instant::now();
        self.clock.idle = Duration::ZERO;
        self.position.epoch = epoch;
        // The backbone stays frozen for the first `freeze_epochs` epochs (a resumed run too:
        // it follows from the epoch), unless frozen or unfrozen by hand.
        let frozen = frozen_at(
            self.frozen_by_hand,
            epoch,
            self.experiment.model.freeze_epochs,
        );
        if self.model().backbone_frozen() != frozen {
            self.set_backbone_frozen(sink, frozen, epoch);
        }
        let batches = self.loader_plan.batches_per_epoch();
        let first_batch = if epoch == self.loader_plan.first_epoch {
            self.loader_plan.skip_batches + 1
        } else {
            self.position.batches_done = 0;
            1
        };
        self.sums = EpochSums::default();
        self.last_settled = None;
        for batch_index in first_batch..=batches {
            if let stop @ Flow::Stop(_) = self.poll_commands(sink, epoch)? {
                return Ok(stop);
            }
            let waiting = Instant::now();
            let batch = loader.batches.recv().map_err(|_| TrainError::LoaderEnded)?;
            self.machine.waited_for_loader(waiting.elapsed());
            self.train_batch(sink, loss_fn, batch, batch_index)?;
        }
        self.settle(sink)?;
        let train_seconds = (epoch_start.elapsed() - self.clock.idle).as_secs_f64();
        let evaluation = self
            .validation
            .evaluate(self.model(), &self.device, self.shape)?;
        self.position.epochs_completed = epoch;
        let EpochSums {
            loss: loss_sum,
            correct,
            seen,
        } = self.sums;
        let metrics = EpochMetrics {
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct / seen.max(1) as f64,
            validation_loss: evaluation.loss,
            validation_accuracy: evaluation.accuracy,
            learning_rate: self.learning_rate,
            dropout: self.model().dropout(),
            seconds: (epoch_start.elapsed() - self.clock.idle).as_secs_f64(),
            images_per_second: seen as f64 / train_seconds.max(1e-9),
            classes: Some(evaluation.classes),
        };
        self.history.push(metrics.clone());
        sink.emit(
            Some(epoch),
            Some(self.position.step),
            EventKind::Epoch(metrics),
        );
        // One sample per epoch at least, so the log keeps what the machine did throughout.
        let sample = self.machine.sample();
        sink.emit(
            Some(epoch),
            Some(self.position.step),
            EventKind::Machine(sample),
        );
        self.report_findings(sink, epoch);
        self.keep_if_best(sink, epoch);
        if self.patience_ran_out() && epoch < self.experiment.train.epochs {
            return Ok(Flow::Stop(Outcome::EarlyStopped));
        }
        let every = self.experiment.train.checkpoint_every;
        if every > 0 && epoch.is_multiple_of(every) && epoch < self.experiment.train.epochs {
            self.checkpoint(sink, epoch, Taken::EpochEnd);
        }
        Ok(Flow::Continue)
    }

    /// Queues one batch's forward and backward passes and optimiser step, with the read of its
    /// loss and accuracy; then settles the batch queued before it.
    fn train_batch(
        &mut self,
        sink: &mut EventSink,
        loss_fn: &CrossEntropyLoss,
        batch: data::Batch,
        index: usize,
    ) -> Result<(), TrainError> {
        let queued = Instant::now();
        let n = batch.len();
        let (c, h, w) = (self.shape.channels, self.shape.height, self.shape.width);
        let images = Tensor::<4>::from_data(
            TensorData::new(batch.images, [n, c, h, w]),
            &self.train_device,
        );
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [n]), &self.train_device);
        self.learning_rate = self.lr_scale * self.scheduled_rate(index);
        let model = self.model.take().expect("model present between steps");
        let logits = model.forward_in(images, self.experiment.train.precision);
        let loss = loss_fn.forward(logits.clone(), targets.clone());
        let correct = logits.argmax(1).reshape([n]).equal(targets).int().sum();
        // One read for both numbers, queued before the backward pass so it is ready early.
        let stats = PendingRead::start(Tensor::cat(
            vec![loss.clone().detach(), correct.float().detach()],
            0,
        ));
        let before = (model.clone(), self.optimizer.clone());
        let gradients = GradientsParams::from_grads(loss.backward(), &model);
        let rates = self.step_rates();
        self.model = Some(self.optimizer.step(rates, model, gradients));
        let this = InFlight {
            batch: index,
            images: n,
            queued,
            stats,
            before,
        };
        match self.in_flight.replace(this) {
            Some(previous) => self.settle_batch(sink, previous),
            None => Ok(()),
        }
    }

    /// The rate of each parameter in this step: the rate in force, and with a discriminative
    /// rate the backbone's share of it (burn's parameter groups).
    fn step_rates(&self) -> ModuleLearningRate {
        let rate = self.learning_rate;
        match &self.backbone_rate_group {
            Some(group) => ModuleLrScheduler::new(rate)
                .with_group(
                    group.clone(),
                    rate * self.experiment.model.backbone_lr_factor,
                )
                .step(),
            None => rate.into(),
        }
    }

    /// Freezes or unfreezes the backbone and logs it as a change (marked on the curves).
    fn set_backbone_frozen(&mut self, sink: &mut EventSink, frozen: bool, epoch: usize) {
        let model = self.model.take().expect("model present between steps");
        let from = model.backbone_frozen();
        self.model = Some(model.with_backbone_frozen(frozen));
        sink.emit(
            Some(epoch),
            Some(self.position.step),
            EventKind::HyperParameterChanged {
                parameter: HyperParameter::BackboneFrozen,
                from: f64::from(u8::from(from)),
                to: f64::from(u8::from(frozen)),
            },
        );
    }

    /// The schedule's rate (before live changes) for batch `batch` of the epoch in progress.
    pub(super) fn scheduled_rate(&self, batch: usize) -> f64 {
        let at = At {
            epoch: self.position.epoch,
            batch,
        };
        let losses: Vec<f64> = self.history.iter().map(|m| m.validation_loss).collect();
        self.plan().rate(at, &losses)
    }

    pub(super) fn plan(&self) -> Plan<'_> {
        Plan {
            schedule: &self.experiment.schedule,
            base: self.experiment.train.learning_rate,
            batches_per_epoch: self.loader_plan.batches_per_epoch(),
            epochs: self.experiment.train.epochs,
        }
    }

    /// Settles the batch in flight, if any, so the model and the events are up to date.
    pub(super) fn settle(&mut self, sink: &mut EventSink) -> Result<(), TrainError> {
        match self.in_flight.take() {
            Some(done) => self.settle_batch(sink, done),
            None => Ok(()),
        }
    }

    /// Reads a batch's loss and accuracy and reports them. A loss that is not finite puts back
    /// the model and optimiser from before its step, dropping the batch queued after it too
    /// (its step started from the bad weights), and pauses the run.
    fn settle_batch(&mut self, sink: &mut EventSink, done: InFlight) -> Result<(), TrainError> {
        let values = done.stats.finish()?;
        let (loss, correct) = (values[0] as f64, values[1] as f64);
        let epoch = self.position.epoch;
        if !loss.is_finite() {
            let (model, optimizer) = done.before;
            self.model = Some(model);
            self.optimizer = optimizer;
            self.in_flight = None;
            self.diverged(sink, epoch, loss);
            return Ok(());
        }
        self.position.step += 1;
        self.position.batches_done = done.batch;
        self.sums.loss += loss * done.images as f64;
        self.sums.correct += correct;
        self.sums.seen += done.images;
        let now = Instant::now();
        let since = self
            .last_settled
            .map_or(done.queued, |last| last.max(done.queued));
        self.last_settled = Some(now);
        let seconds = (now - since).as_secs_f64().max(1e-9);
        sink.emit(
            Some(epoch),
            Some(self.position.step),
            EventKind::Batch(BatchProgress {
                batch: done.batch,
                batches: self.loader_plan.batches_per_epoch(),
                loss,
                images_per_second: done.images as f64 / seconds,
            }),
        );
        if self.machine.since_last() >= MACHINE_SAMPLE_EVERY {
            let sample = self.machine.sample();
            sink.emit(
                Some(epoch),
                Some(self.position.step),
                EventKind::Machine(sample),
            );
        }
        Ok(())
    }

    /// Whether early stopping's patience has run out: `train.best_metric` has not improved by
    /// `early_stopping.min_delta` for `early_stopping.patience` epochs.
    fn patience_ran_out(&self) -> bool {
        let stop = self.experiment.early_stopping;
        stop.is_on()
            && diagnose::epochs_without_improvement(
                &self.history,
                self.experiment.train.best_metric,
                stop.min_delta,
            ) >= stop.patience
    }

    /// Runs the diagnosis rules on the history; reports the findings when they changed.
    fn report_findings(&mut self, sink: &mut EventSink, epoch: usize) {
        self.context.dropout = self.model().dropout();
        self.context.learning_rate = self.learning_rate;
        let findings = diagnose::diagnose(&self.history, &self.context);
        if findings != self.findings {
            self.findings = findings.clone();
            sink.emit(
                Some(epoch),
                Some(self.position.step),
                EventKind::Diagnosis { findings },
            );
        }
    }

    fn diverged(&mut self, sink: &mut EventSink, epoch: usize, loss: f64) {
        sink.emit(
            Some(epoch),
            Some(self.position.step),
            EventKind::Diverged {
                loss: loss.to_string(),
            },
        );
        self.paused = true;
        sink.emit(
            Some(epoch),
            Some(self.position.step),
            EventKind::Paused {
                reason: PauseReason::Diverged,
            },
        );
    }

    /// Applies every pending command; while paused, blocks on the channel (no CPU used). The
    /// batch in flight is settled first, so a command sees the run (and its log) as it stands.
    fn poll_commands(&mut self, sink: &mut EventSink, epoch: usize) -> Result<Flow, TrainError> {
        if let Some(error) = sink.take_failure() {
            self.settle(sink)?;
            self.storage_pause(sink, epoch, error);
        }
        loop {
            let command = if self.paused {
                let waiting = Instant::now();
                let received = self.commands.recv();
                self.clock.idle += waiting.elapsed();
                match received {
                    Ok(command) => command,
                    Err(_) => {
                        // Nobody is left to resume the run: carry on rather than hang.
                        self.paused = false;
                        sink.emit(
                            Some(epoch),
                            Some(self.position.step),
                            EventKind::Warning {
                                message: "the front end went away while paused; resuming".into(),
                            },
                        );
                        sink.emit(Some(epoch), Some(self.position.step), EventKind::Resumed);
                        self.last_settled = None;
                        return Ok(Flow::Continue);
                    }
                }
            } else {
                match self.commands.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                        return Ok(Flow::Continue);
                    }
                }
            };
            self.settle(sink)?;
            if let stop @ Flow::Stop(_) = self.apply(command, sink, epoch) {
                return Ok(stop);
            }
        }
    }

    fn apply(&mut self, command: Command, sink: &mut EventSink, epoch: usize) -> Flow {
        let (at_epoch, at_step) = (Some(epoch), Some(self.position.step));
        let reject = |sink: &mut EventSink, message: String| {
            sink.emit(at_epoch, at_step, EventKind::Warning { message });
        };
        if let Err(message) = command.check() {
            reject(sink, message);
            return Flow::Continue;
        }
        match command {
            Command::Pause if !self.paused => {
                self.paused = true;
                sink.emit(
                    at_epoch,
                    at_step,
                    EventKind::Paused {
                        reason: PauseReason::Requested,
                    },
                );
            }
            Command::Resume if self.paused => match self.retry_storage(sink) {
                Ok(()) => {
                    self.paused = false;
                    self.last_settled = None;
                    sink.emit(at_epoch, at_step, EventKind::Resumed);
                }
                Err(err) => reject(
                    sink,
                    format!("still cannot write: {err}; free some space, then resume again"),
                ),
            },
            Command::Pause | Command::Resume => {}
            Command::SetDropout { value } => {
                let model = self.model.as_mut().expect("model present between steps");
                let from = model.dropout();
                model.set_dropout(value);
                sink.emit(
                    at_epoch,
                    at_step,
                    EventKind::HyperParameterChanged {
                        parameter: HyperParameter::Dropout,
                        from,
                        to: value,
                    },
                );
            }
            Command::SetLearningRate { value } => {
                // The schedule goes on from here scaled so that its rate now is `value`.
                let from = self.learning_rate;
                let next = self.position.batches_done + 1;
                self.lr_scale = value / self.scheduled_rate(next).max(f64::MIN_POSITIVE);
                self.learning_rate = value;
                sink.emit(
                    at_epoch,
                    at_step,
                    EventKind::HyperParameterChanged {
                        parameter: HyperParameter::LearningRate,
                        from,
                        to: value,
                    },
                );
            }
            Command::SetBackboneFrozen { frozen } => {
                if !self.model().has_backbone() {
                    reject(
                        sink,
                        "this model has no backbone to freeze (set model.backbone)".into(),
                    );
                } else if self.model().backbone_frozen() == frozen {
                    let state = if frozen { "frozen" } else { "training" };
                    reject(sink, format!("the backbone is {state} already"));
                } else {
                    self.frozen_by_hand = Some(frozen);
                    self.set_backbone_frozen(sink, frozen, epoch);
                }
            }
            Command::Checkpoint => self.checkpoint(sink, epoch, Taken::Requested),
            Command::Stop => return Flow::Stop(Outcome::Stopped),
            Command::TimeLimit => return Flow::Stop(Outcome::TimeLimit),
        }
        Flow::Continue
    }
}

/// Whether the backbone is frozen in `epoch`: as set by hand, else for the experiment's first
/// `freeze_epochs` epochs.
pub(super) fn frozen_at(by_hand: Option<bool>, epoch: usize, freeze_epochs: usize) -> bool {
    by_hand.unwrap_or(epoch <= freeze_epochs)
}
