//! Everything a run needs before its first batch, one step each: the device, the data and its
//! split, the model and optimiser (fresh or from a checkpoint), and the events that open the
//! run's log.

use std::sync::Arc;

use burn::optim::ModuleOptimizer;
use crossbeam_channel::Receiver;

use super::checkpoint::{self, CheckpointState};
use super::error::TrainError;
use super::eval::ValidationSet;
use super::optim;
use super::restart::Restart;
use super::session::{Clock, Position, Session, Storage};
use super::sink::EventSink;

use crate::data::{self, Augmenter, Dataset, LoaderPlan, Normalizer, Preprocessing, Split};
use crate::diagnose;
use crate::experiment::Experiment;
use crate::model::{Classifier, ModelShape};
use crate::protocol::{
    BackendSummary, Command, DatasetSummary, EarlyStopping, EpochMetrics, EventKind,
    FromCheckpoint, RunStarted,
};
use crate::runs::RunDir;
use crate::schedule::{At, Plan, ScheduledRate};

/// What a run starts from: its experiment and where it goes, plus what the caller has already.
pub struct Start {
    pub experiment: Experiment,
    /// The data in memory already (benchmarks); loaded from the experiment otherwise.
    pub dataset: Option<Arc<Dataset>>,
    pub run: RunDir,
    pub commands: Receiver<Command>,
    pub restart: Option<Restart>,
}

/// Prepares a session; reports the run's opening events on `sink` as it goes. The steps: the
/// device, the data ([`RunData`]), the weights ([`Weights`]), the events that open the log
/// ([`announce`], [`announce_restart`]), then the session itself.
pub fn prepare(start: Start, sink: &mut EventSink) -> Result<Session, TrainError> {
    let Start {
        experiment,
        dataset,
        run,
        commands,
        restart,
    } = start;
    let (device, backend) =
        super::backend::choose(experiment.train.backend, experiment.train.precision)?;
    let data = RunData::load(&experiment, dataset, &device)?;
    let train_device = device.clone().autodiff();
    // Seed before building the model: weight initialisation and dropout draw from it.
    train_device.seed(experiment.train.seed);
    let fresh = Classifier::new(&experiment.model, data.shape, &train_device);
    let mut weights = match &restart {
        None => Weights::fresh(fresh, &experiment, data.shape.classes)?,
        Some(restart) => Weights::restored(restart, fresh, &experiment)?,
    };
    let resuming = restart.as_ref().is_some_and(Restart::is_resume);
    let (first_epoch, skip_batches) = weights.restored.as_ref().map_or((1, 0), start_position);
    let loader_plan = data.loader_plan(
        &experiment,
        first_epoch,
        skip_batches,
        experiment.train.epochs,
    );
    let plan = Plan {
        schedule: &experiment.schedule,
        base: experiment.train.learning_rate,
        batches_per_epoch: loader_plan.batches_per_epoch(),
        epochs: experiment.train.epochs,
    };
    let first = At {
        epoch: first_epoch,
        batch: skip_batches + 1,
    };
    let in_force = weights.in_force(&experiment, restart.as_ref(), plan, first);
    weights.model.set_dropout(in_force.dropout);
    let frozen = super::session::frozen_at(
        in_force.frozen_by_hand,
        first_epoch,
        experiment.model.freeze_epochs,
    );
    weights.model = weights.model.with_backbone_frozen(frozen);
    if !resuming {
        let facts = RunFacts {
            run: &run,
            experiment: &experiment,
            dataset: &data.dataset,
            split: &data.split,
            class_weights: data.class_weights.as_deref(),
            pretrained: weights.pretrained.as_deref(),
            loader_plan: &loader_plan,
            model: &weights.model,
        };
        announce(&facts, &backend, in_force, restart.as_ref(), sink);
    }
    if let Some(message) = data.dataset.skipped_summary() {
        sink.emit(None, Some(0), EventKind::Warning { message });
    }
    let history = match (&restart, &weights.restored) {
        (Some(restart), Some(state)) => {
            let evaluation = data
                .validation
                .evaluate(&weights.model, &device, data.shape)?;
            let from = FromCheckpoint {
                run_id: restart.source.id.clone(),
                checkpoint: restart.checkpoint_in_source(),
                epochs_completed: state.epochs_completed,
                batches_done: skip_batches,
                learning_rate: in_force.learning_rate,
                dropout: in_force.dropout,
                validation_loss: evaluation.loss,
                validation_accuracy: evaluation.accuracy,
                backend: backend.clone(),
                backbone_frozen: weights
                    .model
                    .has_backbone()
                    .then(|| weights.model.backbone_frozen()),
            };
            announce_restart(restart, state, from, sink)
        }
        _ => Vec::new(),
    };
    if let Some(message) = weights.warning.take() {
        sink.emit(None, Some(0), EventKind::Warning { message });
    }
    let context = diagnosis_context(&experiment, &data, &weights.model);
    // A resumed run's time includes the epochs trained before it was interrupted.
    let prior_seconds = if resuming {
        history.iter().map(|m| m.seconds).sum()
    } else {
        0.0
    };
    let (step, epochs_completed) = weights
        .restored
        .as_ref()
        .map_or((0, 0), |s| (s.step, s.epochs_completed));
    let backbone_rate_group = (experiment.model.backbone_lr_factor != 1.0)
        .then(|| weights.model.backbone_group())
        .flatten();
    Ok(Session {
        learning_rate: in_force.learning_rate,
        lr_scale: in_force.lr_scale,
        backbone_rate_group,
        frozen_by_hand: in_force.frozen_by_hand,
        experiment,
        run,
        commands,
        device,
        train_device,
        dataset: data.dataset,
        loader_plan,
        validation: data.validation,
        shape: data.shape,
        model: Some(weights.model),
        optimizer: weights.optimizer,
        paused: false,
        clock: Clock {
            idle: Default::default(),
            prior_seconds,
        },
        position: Position {
            step,
            epochs_completed,
            epoch: first_epoch,
            batches_done: skip_batches,
        },
        storage: Storage {
            resumed_from: restart
                .as_ref()
                .filter(|r| r.is_resume())
                .and_then(|r| r.checkpoint.file_name())
                .map(|name| name.to_string_lossy().into_owned()),
            ..Storage::default()
        },
        history,
        context,
        findings: Vec::new(),
        machine: crate::machine::Sampler::new(),
        in_flight: None,
        last_settled: None,
        sums: Default::default(),
        best_model: None,
        class_weights: data.class_weights,
    })
}

/// A run's data: the images, their split, the normaliser fitted on the training part, the
/// model's input and output sizes, and the validation set ready on the device.
pub(super) struct RunData {
    pub(super) dataset: Arc<Dataset>,
    pub(super) split: Split,
    /// Training images of each class.
    pub(super) class_counts: Vec<usize>,
    /// The resolved class weights of the training loss (none: unweighted).
    pub(super) class_weights: Option<Vec<f64>>,
    pub(super) normalizer: Normalizer,
    pub(super) shape: ModelShape,
    pub(super) validation: ValidationSet,
}

impl RunData {
    /// The loader's work from `first_epoch` (after its first `skip_batches`) to `last_epoch`.
    pub(super) fn loader_plan(
        &self,
        experiment: &Experiment,
        first_epoch: usize,
        skip_batches: usize,
        last_epoch: usize,
    ) -> LoaderPlan {
        LoaderPlan {
            train: self.split.train.clone(),
            batch_size: experiment.train.batch_size,
            seed: experiment.train.seed,
            first_epoch,
            skip_batches,
            last_epoch,
            normalizer: self.normalizer.clone(),
            augmenter: Augmenter::new(
                experiment.augment.clone(),
                self.dataset.height,
                self.dataset.width,
            ),
            sampler: experiment.train.sampler,
        }
    }

    /// The experiment's data (or `dataset`, already in memory), split and prepared.
    pub(super) fn load(
        experiment: &Experiment,
        dataset: Option<Arc<Dataset>>,
        device: &burn::tensor::Device,
    ) -> Result<Self, TrainError> {
        let dataset = match dataset {
            Some(dataset) => dataset,
            None => Arc::new(data::load(&experiment.data)?),
        };
        let split = split(&dataset, experiment)?;
        let mut class_counts = vec![0; dataset.classes.len()];
        for &i in &split.train {
            class_counts[dataset.labels[i]] += 1;
        }
        let class_weights = kiln_core::balance::class_weights(
            experiment.train.class_weights.as_ref(),
            &class_counts,
            &dataset.classes,
        )?;
        // Pretrained weights expect their own inputs: ImageNet's statistics, not these images'.
        let normalizer = if experiment.model.weights.is_some() {
            Normalizer::imagenet()
        } else {
            Normalizer::fit(&dataset, &split.train)
        };
        let shape = ModelShape {
            channels: dataset.channels,
            height: dataset.height,
            width: dataset.width,
            classes: dataset.classes.len(),
        };
        let validation = ValidationSet::new(
            &dataset,
            &split.validation,
            &normalizer,
            device,
            shape,
            experiment.train.precision,
        );
        Ok(Self {
            dataset,
            split,
            class_counts,
            class_weights,
            normalizer,
            shape,
            validation,
        })
    }
}

/// The learning rate and dropout a run trains with from its first batch.
#[derive(Debug, Clone, Copy)]
struct InForce {
    learning_rate: f64,
    /// The factor on the schedule that live changes left (1 without any).
    lr_scale: f64,
    dropout: f64,
    /// The backbone frozen or unfrozen by hand before a resume.
    frozen_by_hand: Option<bool>,
}

/// Opens a new run's log (a fresh run's or a fork's): the run-start event, and the
/// normalisation evaluate and predict will use (`preprocessing.json`).
fn announce(
    facts: &RunFacts,
    backend: &BackendSummary,
    in_force: InForce,
    restart: Option<&Restart>,
    sink: &mut EventSink,
) {
    let started = facts.run_started(backend.clone());
    sink.emit(
        None,
        Some(0),
        EventKind::RunStarted(Box::new(RunStarted {
            learning_rate: in_force.learning_rate,
            dropout: in_force.dropout,
            parent: restart.and_then(|r| r.parent.clone()),
            ..started
        })),
    );
    let preprocessing = Preprocessing::new(facts.dataset, &facts.loader_plan.normalizer);
    let path = facts.run.path.join(crate::runs::PREPROCESSING_FILE);
    if let Err(err) = preprocessing.save(&path) {
        let message = format!(
            "{}: {err}; evaluate and predict will refit the normaliser from the data",
            path.display()
        );
        sink.emit(None, Some(0), EventKind::Warning { message });
    }
}

/// Tells the log where a restarted run continues from: the epochs it has behind it (logged
/// again by a fork) and the checkpoint; returns that history.
fn announce_restart(
    restart: &Restart,
    state: &CheckpointState,
    from: FromCheckpoint,
    sink: &mut EventSink,
) -> Vec<EpochMetrics> {
    let history = inherited_history(restart, state, sink);
    sink.emit(
        Some(state.epochs_completed),
        Some(state.step),
        EventKind::FromCheckpoint(Box::new(from)),
    );
    history
}

/// The stratified train / validation split; both parts must hold images.
pub fn split(dataset: &Dataset, experiment: &Experiment) -> Result<Split, TrainError> {
    let split = data::stratified_split(
        &dataset.labels,
        dataset.classes.len(),
        experiment.data.validation_fraction,
        experiment.data.train_images,
        experiment.train.seed,
    );
    if split.train.is_empty() || split.validation.is_empty() {
        return Err(TrainError::TooSmallToSplit {
            dataset: dataset.name.clone(),
            train: split.train.len(),
            validation: split.validation.len(),
        });
    }
    Ok(split)
}

/// The model and optimiser a run starts with.
struct Weights {
    model: Classifier,
    optimizer: ModuleOptimizer,
    /// Where the run stood, when the weights came from a checkpoint.
    restored: Option<CheckpointState>,
    /// Why the optimiser state was not restored, if it was not.
    warning: Option<String>,
    /// Where pretrained weights came from, in words for the start line.
    pretrained: Option<String>,
}

impl Weights {
    /// The values a run starts from. A resume continues with those in force when the checkpoint
    /// was taken; a fork with its own experiment's dropout (the parent's unless it set another)
    /// and the parent's rate (its schedule with the live changes made to it) unless it set the
    /// rate or the schedule; a fresh run with its experiment's. The rate is the schedule's at
    /// `first`, the run's first step.
    fn in_force(
        &self,
        experiment: &Experiment,
        restart: Option<&Restart>,
        plan: Plan,
        first: At,
    ) -> InForce {
        let losses: Vec<f64> = restart
            .map(|r| r.history.iter().map(|m| m.validation_loss).collect())
            .unwrap_or_default();
        let scheduled = plan.rate(first, &losses);
        let lr_scale = match (&self.restored, restart) {
            (Some(state), Some(restart)) if restart.keeps_rate => state
                .lr_scale
                // A checkpoint from before schedules: its rate was the constant base's.
                .unwrap_or(state.learning_rate / experiment.train.learning_rate),
            _ => 1.0,
        };
        match (&self.restored, restart) {
            (Some(state), Some(restart)) if restart.is_resume() => InForce {
                learning_rate: state.learning_rate,
                lr_scale,
                dropout: state.dropout,
                frozen_by_hand: state.backbone_frozen_by_hand,
            },
            _ => InForce {
                learning_rate: lr_scale * scheduled,
                lr_scale,
                dropout: experiment.model.dropout,
                frozen_by_hand: None,
            },
        }
    }

    /// A new run's weights: fresh, or torchvision's when `model.weights` names a file.
    fn fresh(
        model: Classifier,
        experiment: &Experiment,
        classes: usize,
    ) -> Result<Self, TrainError> {
        let (model, pretrained) = crate::pretrained::for_config(model, &experiment.model, classes)?;
        Ok(Self {
            model,
            optimizer: optim::build(&experiment.train),
            restored: None,
            warning: None,
            pretrained,
        })
    }

    /// Loads a checkpoint's weights into `model` and its optimiser state. An optimiser state
    /// that does not fit (the fork chose another optimiser) is not fatal: the optimiser starts
    /// afresh, with a warning to report.
    fn restored(
        restart: &Restart,
        model: Classifier,
        experiment: &Experiment,
    ) -> Result<Self, TrainError> {
        let path = &restart.checkpoint;
        let state = checkpoint::load_state(path).map_err(TrainError::Restore)?;
        let model = checkpoint::load_weights(path, model).map_err(TrainError::Restore)?;
        let fresh = optim::build(&experiment.train);
        let (optimizer, warning) = match checkpoint::load_optimizer(path, fresh) {
            Ok(loaded) => (loaded, None),
            Err(err) => (
                optim::build(&experiment.train),
                Some(format!(
                    "optimiser state not restored, it starts afresh: {err}"
                )),
            ),
        };
        Ok(Self {
            model,
            optimizer,
            restored: Some(state),
            warning,
            pretrained: None,
        })
    }
}

/// The epochs a restarted run has behind it, as its source's log tells them. A fork logs them
/// again: its own log tells its whole story, the inherited epochs included.
fn inherited_history(
    restart: &Restart,
    state: &CheckpointState,
    sink: &mut EventSink,
) -> Vec<EpochMetrics> {
    let mut history = restart.history.clone();
    history.truncate(state.epochs_completed);
    if !restart.is_resume() {
        for (i, metrics) in history.iter().enumerate() {
            sink.emit(Some(i + 1), None, EventKind::Epoch(metrics.clone()));
        }
    }
    history
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

/// What the run-start event tells about the run itself.
struct RunFacts<'a> {
    run: &'a RunDir,
    experiment: &'a Experiment,
    dataset: &'a Dataset,
    split: &'a Split,
    class_weights: Option<&'a [f64]>,
    pretrained: Option<&'a str>,
    loader_plan: &'a LoaderPlan,
    model: &'a Classifier,
}

impl RunFacts<'_> {
    /// The run-start event with the experiment's values; the caller puts in those in force
    /// (learning rate, dropout, parent).
    fn run_started(&self, backend: BackendSummary) -> RunStarted {
        let Self {
            run,
            experiment,
            dataset,
            split,
            class_weights,
            pretrained,
            loader_plan,
            model,
        } = self;
        RunStarted {
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
            learning_rate: experiment.train.learning_rate,
            dropout: experiment.model.dropout,
            // Every backbone has batch norm throughout.
            batch_norm: experiment.model.batch_norm || experiment.model.backbone.is_some(),
            backbone: experiment.model.backbone.map(|b| b.name().to_string()),
            backbone_parameters: model.backbone_params(),
            backbone_frozen: model.backbone_frozen(),
            augmentation: experiment.augment.is_active(),
            parameters: model.trainable_params(),
            gap_threshold: experiment.monitor.gap_threshold,
            patience: experiment.monitor.patience,
            parent: None,
            placement: Some(kiln_core::here::placement()),
            schedule: (!experiment.schedule.is_constant()).then(|| ScheduledRate {
                config: experiment.schedule.clone(),
                base: experiment.train.learning_rate,
            }),
            early_stopping: experiment.early_stopping.is_on().then_some(EarlyStopping {
                patience: experiment.early_stopping.patience,
                min_delta: experiment.early_stopping.min_delta,
                metric: experiment.train.best_metric,
            }),
            controls: controls_in_words(experiment, *class_weights, *pretrained),
        }
    }
}

/// The training controls in force, for the run-start line: where the weights came from, the
/// frozen epochs, then the loss and sampling settings.
fn controls_in_words(
    experiment: &Experiment,
    weights: Option<&[f64]>,
    pretrained: Option<&str>,
) -> Vec<String> {
    let train = &experiment.train;
    let mut controls: Vec<String> = pretrained.map(str::to_string).into_iter().collect();
    if experiment.model.freeze_epochs > 0 {
        controls.push(format!(
            "backbone frozen for {} epoch(s)",
            experiment.model.freeze_epochs
        ));
    }
    if experiment.model.backbone_lr_factor != 1.0 {
        controls.push(format!(
            "backbone learns at {}× the rate",
            experiment.model.backbone_lr_factor
        ));
    }
    if let (Some(config), Some(weights)) = (&train.class_weights, weights) {
        controls.push(format!(
            "class weights {}",
            kiln_core::balance::describe(config, weights)
        ));
    }
    if train.label_smoothing > 0.0 {
        controls.push(format!("label smoothing {}", train.label_smoothing));
    }
    if train.sampler == crate::experiment::Sampler::Balanced {
        controls.push("balanced sampler".into());
    }
    if train.grad_clip_norm > 0.0 {
        controls.push(format!("gradient norm ≤ {}", train.grad_clip_norm));
    }
    controls
}

/// What the diagnosis rules need besides the history.
fn diagnosis_context(
    experiment: &Experiment,
    data: &RunData,
    model: &Classifier,
) -> diagnose::Context {
    diagnose::Context {
        monitor: experiment.monitor.clone(),
        class_counts: data.class_counts.clone(),
        parameters: model.trainable_params(),
        dropout: experiment.model.dropout,
        learning_rate: experiment.train.learning_rate,
        batch_norm: experiment.model.batch_norm || experiment.model.backbone.is_some(),
        augmentation: experiment.augment.is_active(),
        conv_channels: experiment.model.conv_channels.clone(),
        dense: experiment.model.dense.clone(),
        epochs: experiment.train.epochs,
        class_names: data.dataset.classes.clone(),
        backbone: experiment.model.backbone,
        pretrained: experiment.model.weights.is_some(),
        image_side: data.shape.height.min(data.shape.width),
        controls: diagnose::Controls {
            scheduled: !experiment.schedule.is_constant(),
            early_stopping: experiment.early_stopping.is_on(),
            class_balance: experiment.train.class_weights.is_some()
                || experiment.train.sampler == crate::experiment::Sampler::Balanced,
        },
    }
}
