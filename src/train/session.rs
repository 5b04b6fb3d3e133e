//! One run on the training thread: prepare data, model and optimiser, then the loop that trains,
//! evaluates, checkpoints and applies commands at batch boundaries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use crossbeam_channel::{Receiver, TryRecvError};

use super::checkpoint::{self, CheckpointState};
use super::sink::EventSink;
use crate::data::{self, Augmenter, Dataset, Loader, LoaderPlan, Normalizer};
use crate::diagnose;
use crate::experiment::{Experiment, OptimizerKind, TrainConfig};
use crate::model::{Classifier, ModelShape};
use crate::protocol::{
    BatchProgress, Command, DatasetSummary, EpochMetrics, EventKind, Finding, FromCheckpoint,
    HyperParameter, Outcome, ParentRun, PauseReason, RunFinished, RunStarted,
};
use crate::runs::RunDir;

/// Validation batches are larger than training ones: no gradients, so memory allows it.
const EVAL_BATCH: usize = 256;

/// Runs one experiment to its end; every outcome, failures included, ends in an event.
pub fn run(
    experiment: Experiment,
    dataset: Option<Arc<Dataset>>,
    run: RunDir,
    sink: &mut EventSink,
    commands: Receiver<Command>,
    restart: Option<Restart>,
) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Session::prepare(experiment, dataset, run, sink, commands, restart)
            .and_then(|mut s| s.train(sink))
    }));
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some(message),
        Err(panic) => Some(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .map_or_else(
                    || "the training thread panicked".to_string(),
                    |m| format!("internal error: {m}"),
                ),
        ),
    };
    if let Some(error) = error {
        sink.emit(None, None, EventKind::Failed { error });
    }
}

/// A checkpoint to train on from, instead of fresh weights.
#[derive(Debug, Clone)]
pub struct Restart {
    pub checkpoint: PathBuf,
    /// The run the checkpoint belongs to (the run itself when resuming).
    pub source: RunDir,
    /// The per-epoch metrics up to the checkpoint, as that run's log tells them.
    pub history: Vec<EpochMetrics>,
    /// Set for a fork: the new run records its parent and copies the inherited epochs into its
    /// own log. Unset for a resume, which continues its own log.
    pub parent: Option<ParentRun>,
}

/// Host-side validation data, normalised once for the whole run.
struct ValidationSet {
    images: Vec<f32>,
    labels: Vec<i64>,
    image_len: usize,
    /// The set already on the device, when it is small enough to keep there: every epoch's
    /// evaluation then skips the host-to-device copy (most of its time on a GPU).
    on_device: Option<Vec<EvalBatch>>,
}

/// Validation sets up to this size stay on the device between evaluations.
const KEEP_ON_DEVICE_BYTES: usize = 512 << 20;

impl ValidationSet {
    /// The `indices` images normalised, kept on `device` when they fit [`KEEP_ON_DEVICE_BYTES`].
    fn new(
        dataset: &Dataset,
        indices: &[usize],
        normalizer: &Normalizer,
        device: &Device,
        shape: ModelShape,
    ) -> Self {
        let images = normalizer.images(dataset, indices);
        let labels: Vec<i64> = indices.iter().map(|&i| dataset.labels[i] as i64).collect();
        let image_len = dataset.image_len();
        if images.len() * std::mem::size_of::<f32>() > KEEP_ON_DEVICE_BYTES {
            return Self {
                images,
                labels,
                image_len,
                on_device: None,
            };
        }
        let on_device = upload_batches(device, &images, &labels, image_len, shape);
        // The device copy is the one used: the floats are not kept twice.
        Self {
            images: Vec::new(),
            labels,
            image_len,
            on_device: Some(on_device),
        }
    }

    fn evaluate(
        &self,
        model: &Classifier,
        device: &Device,
        shape: ModelShape,
    ) -> Result<(f64, f64), String> {
        match &self.on_device {
            Some(batches) => evaluate_batches(model, device, batches, self.labels.len()),
            None => evaluate(
                model,
                device,
                &self.images,
                &self.labels,
                self.image_len,
                shape,
            ),
        }
    }
}

enum BatchOutcome {
    /// Mean loss and number of correct predictions.
    Trained { loss: f64, correct: f64 },
    /// The loss was NaN or infinite; no step was taken.
    Diverged { loss: f64 },
}

/// Whether the loop goes on after the commands at a batch boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

struct Session {
    experiment: Experiment,
    run: RunDir,
    commands: Receiver<Command>,
    device: Device,
    train_device: Device,
    dataset: Arc<Dataset>,
    loader_plan: LoaderPlan,
    validation: ValidationSet,
    shape: ModelShape,
    model: Option<Classifier>,
    optimizer: ModuleOptimizer,
    learning_rate: f64,
    paused: bool,
    /// Time spent paused or writing checkpoints, left out of epoch timings.
    idle: Duration,
    step: u64,
    epochs_completed: usize,
    /// The epoch in progress and its batches trained so far (for mid-epoch checkpoints).
    epoch: usize,
    batches_done: usize,
    /// Training time before this process took over (a resumed run).
    prior_seconds: f64,
    /// Paused because the disk could not be written; resuming retries first.
    storage_paused: bool,
    /// The epoch whose checkpoint failed and is written again on resume.
    blocked_checkpoint: Option<usize>,
    best: Option<(usize, f64)>,
    history: Vec<EpochMetrics>,
    /// What the diagnosis rules need besides the history.
    context: diagnose::Context,
    /// The findings last reported, so only changes become events.
    findings: Vec<Finding>,
}

impl Session {
    fn prepare(
        experiment: Experiment,
        dataset: Option<Arc<Dataset>>,
        run: RunDir,
        sink: &mut EventSink,
        commands: Receiver<Command>,
        restart: Option<Restart>,
    ) -> Result<Session, String> {
        let (device, backend) =
            super::backend::choose(experiment.train.backend).map_err(|e| e.to_string())?;
        let dataset = match dataset {
            Some(dataset) => dataset,
            None => Arc::new(data::load(&experiment.data).map_err(|e| e.to_string())?),
        };
        let split = data::stratified_split(
            &dataset.labels,
            dataset.classes.len(),
            experiment.data.validation_fraction,
            experiment.data.train_images,
            experiment.train.seed,
        );
        if split.train.is_empty() || split.validation.is_empty() {
            return Err(format!(
                "dataset {} is too small to split: {} training and {} validation images",
                dataset.name,
                split.train.len(),
                split.validation.len()
            ));
        }
        let normalizer = Normalizer::fit(&dataset, &split.train);
        let shape = ModelShape {
            channels: dataset.channels,
            height: dataset.height,
            width: dataset.width,
            classes: dataset.classes.len(),
        };
        let validation =
            ValidationSet::new(&dataset, &split.validation, &normalizer, &device, shape);
        let train_device = device.clone().autodiff();
        // Seed before building the model: weight initialisation and dropout draw from it.
        train_device.seed(experiment.train.seed);
        let mut model = Classifier::new(&experiment.model, shape, &train_device);
        let mut optimizer = build_optimizer(&experiment.train);
        let mut warning = None;
        let restored = match &restart {
            None => None,
            Some(restart) => {
                let loaded = restore(&restart.checkpoint, model, optimizer, &experiment.train)?;
                (model, optimizer, warning) = (loaded.model, loaded.optimizer, loaded.warning);
                Some(loaded.state)
            }
        };
        // A resume continues with the values in force when the checkpoint was taken; a fork
        // with its own experiment's (which default to those same values).
        let (learning_rate, dropout) = match (&restart, &restored) {
            (Some(r), Some(state)) if r.parent.is_none() => (state.learning_rate, state.dropout),
            _ => (experiment.train.learning_rate, experiment.model.dropout),
        };
        model.set_dropout(dropout);
        let (first_epoch, skip_batches) = restored.as_ref().map_or((1, 0), start_position);
        let loader_plan = LoaderPlan {
            train: split.train.clone(),
            batch_size: experiment.train.batch_size,
            seed: experiment.train.seed,
            first_epoch,
            skip_batches,
            last_epoch: experiment.train.epochs,
            normalizer,
            augmenter: Augmenter::new(experiment.augment.clone(), dataset.height, dataset.width),
        };

        let resuming = restart.as_ref().is_some_and(|r| r.parent.is_none());
        let started = (!resuming).then(|| {
            let backend = backend.clone();
            EventKind::RunStarted(Box::new(RunStarted {
                run_id: run.id.clone(),
                experiment: experiment.name.clone(),
                dataset: DatasetSummary {
                    name: dataset.name.clone(),
                    classes: dataset.classes.clone(),
                    train_images: split.train.len(),
                    validation_images: split.validation.len(),
                    channels: dataset.channels,
                    height: dataset.height,
                    width: dataset.width,
                    skipped: dataset.skipped.len(),
                },
                backend,
                epochs: experiment.train.epochs,
                batches_per_epoch: loader_plan.batches_per_epoch(),
                batch_size: experiment.train.batch_size,
                learning_rate,
                dropout,
                batch_norm: experiment.model.batch_norm,
                augmentation: experiment.augment.is_active(),
                parameters: model.num_params(),
                gap_threshold: experiment.monitor.gap_threshold,
                patience: experiment.monitor.patience,
                parent: restart.as_ref().and_then(|r| r.parent.clone()),
            }))
        });
        if let Some(kind) = started {
            sink.emit(None, Some(0), kind);
        }
        let context = diagnose::Context {
            monitor: experiment.monitor.clone(),
            train_images: split.train.len(),
            classes: dataset.classes.len(),
            parameters: model.num_params(),
            dropout: experiment.model.dropout,
            learning_rate: experiment.train.learning_rate,
            batch_norm: experiment.model.batch_norm,
            augmentation: experiment.augment.is_active(),
            conv_channels: experiment.model.conv_channels.clone(),
            dense: experiment.model.dense.clone(),
            epochs: experiment.train.epochs,
        };
        if let Some(message) = dataset.skipped_summary() {
            sink.emit(None, Some(0), EventKind::Warning { message });
        }
        let mut history = Vec::new();
        if let (Some(restart), Some(state)) = (&restart, &restored) {
            history = restart.history.clone();
            history.truncate(state.epochs_completed);
            if restart.parent.is_some() {
                // The fork's own log tells its whole story, the inherited epochs included.
                for (i, metrics) in history.iter().enumerate() {
                    sink.emit(Some(i + 1), None, EventKind::Epoch(metrics.clone()));
                }
            }
            let (validation_loss, validation_accuracy) =
                validation.evaluate(&model, &device, shape)?;
            sink.emit(
                Some(state.epochs_completed),
                Some(state.step),
                EventKind::FromCheckpoint(Box::new(FromCheckpoint {
                    run_id: restart.source.id.clone(),
                    checkpoint: restart
                        .checkpoint
                        .strip_prefix(&restart.source.path)
                        .unwrap_or(&restart.checkpoint)
                        .display()
                        .to_string(),
                    epochs_completed: state.epochs_completed,
                    batches_done: skip_batches,
                    learning_rate,
                    dropout,
                    validation_loss,
                    validation_accuracy,
                    backend: backend.clone(),
                })),
            );
        }
        if let Some(message) = warning {
            sink.emit(None, Some(0), EventKind::Warning { message });
        }
        let best = diagnose::best_epoch(&history).map(|e| (e, history[e - 1].validation_accuracy));
        // A resumed run's time includes the epochs trained before it was interrupted.
        let prior_seconds = if resuming {
            history.iter().map(|m| m.seconds).sum()
        } else {
            0.0
        };
        let (step, epochs_completed) = restored
            .as_ref()
            .map_or((0, 0), |s| (s.step, s.epochs_completed));
        Ok(Session {
            learning_rate,
            experiment,
            run,
            commands,
            device,
            train_device,
            dataset,
            loader_plan,
            validation,
            shape,
            model: Some(model),
            optimizer,
            paused: false,
            idle: Duration::ZERO,
            step,
            epochs_completed,
            epoch: first_epoch,
            batches_done: skip_batches,
            prior_seconds,
            storage_paused: false,
            blocked_checkpoint: None,
            best,
            history,
            context,
            findings: Vec::new(),
        })
    }

    fn model(&self) -> &Classifier {
        self.model
            .as_ref()
            .expect("the model is only taken out during an optimiser step")
    }

    fn train(&mut self, sink: &mut EventSink) -> Result<(), String> {
        let started = Instant::now();
        let loader = Loader::spawn(self.dataset.clone(), self.loader_plan.clone())
            .map_err(|e| format!("cannot start the loader thread: {e}"))?;
        let epochs = self.experiment.train.epochs;
        let batches = self.loader_plan.batches_per_epoch();
        let loss_fn = CrossEntropyLoss::new(None, &self.train_device);

        let mut outcome = Outcome::Completed;
        let first_epoch = self.loader_plan.first_epoch;
        'epochs: for epoch in first_epoch..=epochs {
            let epoch_start = Instant::now();
            self.idle = Duration::ZERO;
            self.epoch = epoch;
            let first_batch = if epoch == first_epoch {
                self.loader_plan.skip_batches + 1
            } else {
                self.batches_done = 0;
                1
            };
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0.0f64, 0usize);
            for batch_index in first_batch..=batches {
                if self.poll_commands(sink, epoch) == Flow::Stop {
                    outcome = Outcome::Stopped;
                    break 'epochs;
                }
                let batch = loader
                    .batches
                    .recv()
                    .map_err(|_| "the loader thread ended early".to_string())?;
                let batch_start = Instant::now();
                let n = batch.len();
                match self.train_batch(&loss_fn, batch)? {
                    BatchOutcome::Trained {
                        loss,
                        correct: batch_correct,
                    } => {
                        self.step += 1;
                        self.batches_done = batch_index;
                        loss_sum += loss * n as f64;
                        correct += batch_correct;
                        seen += n;
                        let seconds = batch_start.elapsed().as_secs_f64().max(1e-9);
                        sink.emit(
                            Some(epoch),
                            Some(self.step),
                            EventKind::Batch(BatchProgress {
                                batch: batch_index,
                                batches,
                                loss,
                                images_per_second: n as f64 / seconds,
                            }),
                        );
                    }
                    BatchOutcome::Diverged { loss } => self.diverged(sink, epoch, loss),
                }
            }
            let train_seconds = (epoch_start.elapsed() - self.idle).as_secs_f64();
            let (validation_loss, validation_accuracy) =
                self.validation
                    .evaluate(self.model(), &self.device, self.shape)?;
            self.epochs_completed = epoch;
            let metrics = EpochMetrics {
                train_loss: loss_sum / seen.max(1) as f64,
                train_accuracy: correct / seen.max(1) as f64,
                validation_loss,
                validation_accuracy,
                learning_rate: self.learning_rate,
                dropout: self.model().dropout(),
                seconds: (epoch_start.elapsed() - self.idle).as_secs_f64(),
                images_per_second: seen as f64 / train_seconds.max(1e-9),
            };
            if self.best.is_none_or(|(_, acc)| validation_accuracy > acc) {
                self.best = Some((epoch, validation_accuracy));
            }
            self.history.push(metrics.clone());
            sink.emit(Some(epoch), Some(self.step), EventKind::Epoch(metrics));
            self.report_findings(sink, epoch);
            let every = self.experiment.train.checkpoint_every;
            if every > 0 && epoch % every == 0 && epoch < epochs {
                self.checkpoint(sink, epoch, true);
            }
        }
        drop(loader);
        // At the epoch in progress, so a stopped run resumes after its last trained batch.
        let last_epoch = self.epoch.max(1);
        self.checkpoint(sink, last_epoch, false);
        sink.emit(
            Some(self.epochs_completed),
            Some(self.step),
            EventKind::Finished(RunFinished {
                outcome,
                epochs_completed: self.epochs_completed,
                best_epoch: self.best.map(|(e, _)| e),
                best_validation_accuracy: self.best.map(|(_, a)| a),
                seconds: self.prior_seconds + started.elapsed().as_secs_f64(),
            }),
        );
        Ok(())
    }

    /// One optimiser step, skipped when the loss is not finite so the weights stay usable.
    fn train_batch(
        &mut self,
        loss_fn: &CrossEntropyLoss,
        batch: data::Batch,
    ) -> Result<BatchOutcome, String> {
        let n = batch.len();
        let (c, h, w) = (self.shape.channels, self.shape.height, self.shape.width);
        let images = Tensor::<4>::from_data(
            TensorData::new(batch.images, [n, c, h, w]),
            &self.train_device,
        );
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [n]), &self.train_device);
        let model = self.model.take().expect("model present between steps");
        let logits = model.forward(images);
        let loss = loss_fn.forward(logits.clone(), targets.clone());
        let correct = logits.argmax(1).reshape([n]).equal(targets).int().sum();
        // One read per batch for both numbers: each read waits for the device.
        let stats = Tensor::cat(vec![loss.clone().detach(), correct.float().detach()], 0);
        let values = read_floats(stats)?;
        let (loss_value, correct_value) = (values[0] as f64, values[1] as f64);
        if !loss_value.is_finite() {
            self.model = Some(model);
            return Ok(BatchOutcome::Diverged { loss: loss_value });
        }
        let gradients = GradientsParams::from_grads(loss.backward(), &model);
        self.model = Some(self.optimizer.step(self.learning_rate, model, gradients));
        Ok(BatchOutcome::Trained {
            loss: loss_value,
            correct: correct_value,
        })
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
                Some(self.step),
                EventKind::Diagnosis { findings },
            );
        }
    }

    fn diverged(&mut self, sink: &mut EventSink, epoch: usize, loss: f64) {
        sink.emit(
            Some(epoch),
            Some(self.step),
            EventKind::Diverged {
                loss: loss.to_string(),
            },
        );
        self.paused = true;
        sink.emit(
            Some(epoch),
            Some(self.step),
            EventKind::Paused {
                reason: PauseReason::Diverged,
            },
        );
    }

    /// Applies every pending command; while paused, blocks on the channel (no CPU used).
    fn poll_commands(&mut self, sink: &mut EventSink, epoch: usize) -> Flow {
        if let Some(error) = sink.take_failure() {
            self.storage_pause(sink, epoch, error);
        }
        loop {
            let command = if self.paused {
                let waiting = Instant::now();
                let received = self.commands.recv();
                self.idle += waiting.elapsed();
                match received {
                    Ok(command) => command,
                    Err(_) => {
                        // Nobody is left to resume the run: carry on rather than hang.
                        self.paused = false;
                        sink.emit(
                            Some(epoch),
                            Some(self.step),
                            EventKind::Warning {
                                message: "the front end went away while paused; resuming".into(),
                            },
                        );
                        sink.emit(Some(epoch), Some(self.step), EventKind::Resumed);
                        return Flow::Continue;
                    }
                }
            } else {
                match self.commands.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                        return Flow::Continue;
                    }
                }
            };
            if self.apply(command, sink, epoch) == Flow::Stop {
                return Flow::Stop;
            }
        }
    }

    fn apply(&mut self, command: Command, sink: &mut EventSink, epoch: usize) -> Flow {
        let (at_epoch, at_step) = (Some(epoch), Some(self.step));
        let reject = |sink: &mut EventSink, message: String| {
            sink.emit(at_epoch, at_step, EventKind::Warning { message });
        };
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
                    sink.emit(at_epoch, at_step, EventKind::Resumed);
                }
                Err(err) => reject(
                    sink,
                    format!("still cannot write: {err}; free some space, then resume again"),
                ),
            },
            Command::Pause | Command::Resume => {}
            Command::SetDropout { value } => {
                if value.is_finite() && (0.0..1.0).contains(&value) {
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
                } else {
                    reject(
                        sink,
                        format!("dropout {value} rejected: expected a probability in [0, 1)"),
                    );
                }
            }
            Command::SetLearningRate { value } => {
                if value.is_finite() && value > 0.0 {
                    let from = self.learning_rate;
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
                } else {
                    reject(
                        sink,
                        format!("learning rate {value} rejected: expected a positive number"),
                    );
                }
            }
            Command::Checkpoint => self.checkpoint(sink, epoch, true),
            Command::Stop => return Flow::Stop,
        }
        Flow::Continue
    }

    /// Pauses rather than train on while the log or checkpoints cannot be written (a full disk):
    /// nothing is lost, and the user resumes once there is space.
    fn storage_pause(&mut self, sink: &mut EventSink, epoch: usize, error: String) {
        let newly = !self.storage_paused;
        self.storage_paused = true;
        let (at_epoch, at_step) = (Some(epoch), Some(self.step));
        sink.emit(
            at_epoch,
            at_step,
            EventKind::Warning {
                message: format!(
                    "{error}; the run is paused so nothing is lost: free some space, then resume"
                ),
            },
        );
        if newly && !self.paused {
            self.paused = true;
            sink.emit(
                at_epoch,
                at_step,
                EventKind::Paused {
                    reason: PauseReason::Storage,
                },
            );
        }
    }

    /// Writes what a full disk held back: the log's pending lines, then the failed checkpoint.
    fn retry_storage(&mut self, sink: &mut EventSink) -> Result<(), String> {
        if !self.storage_paused {
            return Ok(());
        }
        sink.retry()?;
        if let Some(epoch) = self.blocked_checkpoint {
            self.checkpoint(sink, epoch, false);
            if self.blocked_checkpoint.is_some() {
                return Err("the checkpoint still cannot be written".into());
            }
        }
        self.storage_paused = false;
        Ok(())
    }

    /// Writes a checkpoint; when that fails and `pause_on_failure`, the run pauses until the
    /// user resumes (which writes it again).
    fn checkpoint(&mut self, sink: &mut EventSink, epoch: usize, pause_on_failure: bool) {
        let started = Instant::now();
        let state = CheckpointState {
            epochs_completed: self.epochs_completed,
            epoch,
            batches_done: if self.epochs_completed >= epoch {
                0
            } else {
                self.batches_done
            },
            step: self.step,
            learning_rate: self.learning_rate,
            dropout: self.model().dropout(),
        };
        let written = checkpoint::write(
            &self.run.checkpoints_path(),
            self.model(),
            &self.optimizer,
            &state,
        );
        match written {
            Ok(path) => {
                self.blocked_checkpoint = None;
                let path = path
                    .strip_prefix(&self.run.path)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                sink.emit(
                    Some(epoch),
                    Some(self.step),
                    EventKind::CheckpointWritten { path },
                );
            }
            Err(err) if pause_on_failure => {
                self.blocked_checkpoint = Some(epoch);
                self.storage_pause(sink, epoch, format!("checkpoint failed: {err}"));
            }
            Err(err) => {
                self.blocked_checkpoint = self.blocked_checkpoint.filter(|_| self.storage_paused);
                sink.emit(
                    Some(epoch),
                    Some(self.step),
                    EventKind::Warning {
                        message: format!("checkpoint failed: {err}"),
                    },
                );
            }
        }
        self.idle += started.elapsed();
    }
}

/// What a checkpoint gave back.
struct Restored {
    model: Classifier,
    optimizer: ModuleOptimizer,
    state: CheckpointState,
    /// Why the optimiser state was not restored, if it was not.
    warning: Option<String>,
}

/// Loads a checkpoint's weights into `model` and its optimiser state into `optimizer`. An
/// optimiser state that does not fit (the fork chose another optimiser) is not fatal: the
/// optimiser starts afresh, with a warning to report.
fn restore(
    checkpoint: &std::path::Path,
    model: Classifier,
    optimizer: ModuleOptimizer,
    train: &TrainConfig,
) -> Result<Restored, String> {
    let state = checkpoint::load_state(checkpoint).map_err(|e| e.to_string())?;
    let model = checkpoint::load_weights(checkpoint, model)
        .map_err(|e| format!("cannot load the checkpoint: {e}"))?;
    let (optimizer, warning) = match checkpoint::load_optimizer(checkpoint, optimizer) {
        Ok(loaded) => (loaded, None),
        Err(err) => (
            build_optimizer(train),
            Some(format!(
                "optimiser state not restored, it starts afresh: {err}"
            )),
        ),
    };
    Ok(Restored {
        model,
        optimizer,
        state,
        warning,
    })
}

/// The epoch to train first and how many of its batches are done: a checkpoint taken mid-epoch
/// resumes that epoch after its trained batches.
fn start_position(state: &CheckpointState) -> (usize, usize) {
    if state.batches_done > 0 && state.epoch > state.epochs_completed {
        (state.epoch, state.batches_done)
    } else {
        (state.epochs_completed + 1, 0)
    }
}

fn build_optimizer(train: &TrainConfig) -> ModuleOptimizer {
    let decay =
        (train.weight_decay > 0.0).then(|| WeightDecayConfig::new(train.weight_decay as f32));
    match train.optimizer {
        OptimizerKind::Adam => AdamConfig::new().with_weight_decay(decay).init(),
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_weight_decay(train.weight_decay as f32)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum((train.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(train.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}

fn read_floats(tensor: Tensor<1>) -> Result<Vec<f32>, String> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| format!("cannot read metrics from the device: {e:?}"))
}

/// One validation batch on the device: images and labels.
pub type EvalBatch = (Tensor<4>, Tensor<1, Int>);

/// Mean loss and accuracy of `model` over a whole split (weighted by batch size), copying the
/// split to the device batch by batch.
pub fn evaluate(
    model: &Classifier,
    device: &Device,
    images: &[f32],
    labels: &[i64],
    image_len: usize,
    shape: ModelShape,
) -> Result<(f64, f64), String> {
    let batches = upload_batches(device, images, labels, image_len, shape);
    evaluate_batches(model, device, &batches, labels.len())
}

/// A split as device batches of [`EVAL_BATCH`] images.
pub fn upload_batches(
    device: &Device,
    images: &[f32],
    labels: &[i64],
    image_len: usize,
    shape: ModelShape,
) -> Vec<EvalBatch> {
    labels
        .chunks(EVAL_BATCH)
        .enumerate()
        .map(|(start, chunk)| {
            let n = chunk.len();
            let offset = start * EVAL_BATCH * image_len;
            let batch = images[offset..offset + n * image_len].to_vec();
            let input = Tensor::<4>::from_data(
                TensorData::new(batch, [n, shape.channels, shape.height, shape.width]),
                device,
            );
            let targets = Tensor::<1, Int>::from_data(TensorData::new(chunk.to_vec(), [n]), device);
            (input, targets)
        })
        .collect()
}

/// Mean loss and accuracy of `model` over batches already on the device (`count` images).
pub fn evaluate_batches(
    model: &Classifier,
    device: &Device,
    batches: &[EvalBatch],
    count: usize,
) -> Result<(f64, f64), String> {
    let model = model.valid();
    let loss_fn = CrossEntropyLoss::new(None, device);
    let mut totals = Tensor::<1>::zeros([2], device);
    for (input, targets) in batches {
        let n = targets.dims()[0];
        let logits = model.forward(input.clone());
        let loss = loss_fn.forward(logits.clone(), targets.clone()) * n as f32;
        let correct = logits
            .argmax(1)
            .reshape([n])
            .equal(targets.clone())
            .int()
            .sum()
            .float();
        totals = totals + Tensor::cat(vec![loss, correct], 0);
    }
    let values = read_floats(totals)?;
    let n = count.max(1) as f64;
    Ok((values[0] as f64 / n, values[1] as f64 / n))
}
