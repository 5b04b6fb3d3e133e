//! Using a trained run's model: its weights from a chosen checkpoint, with the preprocessing it
//! was trained with, to evaluate it ([`evaluate`]) or classify new images ([`predict`]).

pub mod evaluate;
pub mod mistakes;
pub mod predict;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use crate::data::{self, Dataset, Normalizer, Preprocessing, Split};
use crate::experiment::{BackendChoice, ConfigError, Experiment, Precision};
use crate::model::{Classifier, ModelShape};
use crate::protocol::BackendSummary;
use crate::runs::{self, StoreError};
use crate::train::checkpoint::{self, CheckpointError, CheckpointState};
use crate::train::eval::read_floats;
use crate::train::{self, BackendError, TrainError};

/// Which of a run's checkpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointChoice {
    /// `checkpoints/best/` (`train.best_metric`); the newest when the run has none.
    #[default]
    Best,
    /// The newest checkpoint.
    Last,
    /// The one written at the end of this epoch.
    Epoch(usize),
}

impl FromStr for CheckpointChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "best" => Ok(Self::Best),
            "last" => Ok(Self::Last),
            _ => text
                .parse::<usize>()
                .ok()
                .filter(|&epoch| epoch > 0)
                .map(Self::Epoch)
                .ok_or_else(|| format!("expected best, last or an epoch number, got \"{text}\"")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{id} has no checkpoint yet (the first is written after its first epoch)")]
    NoCheckpoint { id: String },
    #[error(
        "{id} has no checkpoint at the end of epoch {epoch}; it has: {}",
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    NoSuchCheckpoint {
        id: String,
        epoch: usize,
        available: Vec<String>,
    },
    #[error("cannot load the model: {0}")]
    Load(#[from] CheckpointError),
    #[error("cannot read the run's preprocessing: {0}")]
    Preprocessing(String),
    #[error("{0}")]
    Data(String),
    #[error(
        "class(es) {} are not among the model's classes ({}); evaluate on data with the \
         run's classes",
        unknown.join(", "),
        known.join(", ")
    )]
    ClassMismatch {
        unknown: Vec<String>,
        known: Vec<String>,
    },
    #[error(
        "{data} has {got} images but the model takes {expected}; set data.image_size and \
         data.channels in the file given to --data, or give a folder (resized to fit)"
    )]
    ShapeMismatch {
        data: String,
        got: String,
        expected: String,
    },
    #[error(transparent)]
    Device(#[from] TrainError),
}

impl InferError {
    /// Whether the user asked for something that is not there or does not fit (exit 2).
    pub fn is_bad_input(&self) -> bool {
        match self {
            InferError::Store(err) => err.is_bad_input(),
            InferError::Config(_)
            | InferError::Backend(_)
            | InferError::NoCheckpoint { .. }
            | InferError::NoSuchCheckpoint { .. }
            | InferError::Data(_)
            | InferError::ClassMismatch { .. }
            | InferError::ShapeMismatch { .. } => true,
            InferError::Load(_) | InferError::Preprocessing(_) | InferError::Device(_) => false,
        }
    }
}

/// A run's model, loaded and ready.
pub struct TrainedModel {
    pub run_id: String,
    pub run_path: PathBuf,
    /// The run's resolved experiment.
    pub experiment: Experiment,
    /// The checkpoint folder, relative to the run's directory.
    pub checkpoint: String,
    pub state: CheckpointState,
    /// Set when the checkpoint asked for was not there and another stood in (and why).
    pub note: Option<String>,
    pub preprocessing: Preprocessing,
    pub shape: ModelShape,
    pub model: Classifier,
    pub device: Device,
    pub backend: BackendSummary,
}

/// The run's data and its split, as the run drew them (same files, seed and fraction).
pub struct RunData {
    pub dataset: Dataset,
    pub split: Split,
}

impl TrainedModel {
    /// Loads the model of the run at `run_path` from `choice`, on `backend` (the run's own
    /// backend setting when `None`).
    pub fn open(
        run_path: &Path,
        choice: CheckpointChoice,
        backend: Option<BackendChoice>,
    ) -> Result<Self, InferError> {
        let id = run_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !run_path.join(runs::EVENTS_FILE).is_file() {
            return Err(StoreError::NotARun {
                path: run_path.to_path_buf(),
            }
            .into());
        }
        let mut experiment = Experiment::load(&run_path.join(runs::EXPERIMENT_FILE), &[])?;
        if let Some(backend) = backend {
            experiment.train.backend = backend;
        }
        let (checkpoint_path, state, note) = pick_checkpoint(run_path, &id, choice)?;
        let saved = Preprocessing::load(&run_path.join(runs::PREPROCESSING_FILE))
            .map_err(InferError::Preprocessing)?;
        let preprocessing = match saved {
            Some(saved) => saved,
            // Runs from before kiln saved it: fit the normaliser again, as the run did.
            None => {
                let RunData { dataset, split } = RunData::load(&experiment)?;
                Preprocessing::new(&dataset, &Normalizer::fit(&dataset, &split.train))
            }
        };
        let shape = ModelShape {
            channels: preprocessing.channels,
            height: preprocessing.height,
            width: preprocessing.width,
            classes: preprocessing.classes.len(),
        };
        let (device, backend) = train::choose_backend(experiment.train.backend, Precision::F32)?;
        let model = checkpoint::load_model(&checkpoint_path, &experiment.model, shape, &device)?;
        let checkpoint = checkpoint_path
            .strip_prefix(run_path)
            .unwrap_or(&checkpoint_path)
            .display()
            .to_string();
        Ok(Self {
            run_id: id,
            run_path: run_path.to_path_buf(),
            experiment,
            checkpoint,
            state,
            note,
            preprocessing,
            shape,
            model,
            device,
            backend,
        })
    }
}

impl TrainedModel {
    /// Class probabilities of `count` normalised images laid end to end in `floats`, row by
    /// row (one device read for the batch; nothing is read for an empty one).
    pub fn probabilities(&self, floats: Vec<f32>, count: usize) -> Result<Vec<f32>, InferError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let s = self.shape;
        let input = Tensor::<4>::from_data(
            TensorData::new(floats, [count, s.channels, s.height, s.width]),
            &self.device,
        );
        let probabilities = softmax(self.model.valid().forward(input), 1);
        Ok(read_floats(probabilities.reshape([count * s.classes]))?)
    }
}

impl RunData {
    /// The run's dataset and split, drawn as in training.
    pub fn load(experiment: &Experiment) -> Result<Self, InferError> {
        let dataset = data::load(&experiment.data)
            .map_err(|err| InferError::Data(format!("cannot load the run's data: {err}")))?;
        let split = train::split(&dataset, experiment)?;
        Ok(Self { dataset, split })
    }
}

/// The checkpoint `choice` names in the run at `run_path`.
fn pick_checkpoint(
    run_path: &Path,
    id: &str,
    choice: CheckpointChoice,
) -> Result<(PathBuf, CheckpointState, Option<String>), InferError> {
    let folder = run_path.join(runs::CHECKPOINTS_DIR);
    let routine = checkpoint::list(&folder);
    let no_checkpoint = || InferError::NoCheckpoint { id: id.to_string() };
    match choice {
        CheckpointChoice::Best => match checkpoint::best(&folder) {
            Some((path, state)) => Ok((path, state, None)),
            None => {
                let (path, state) = routine.last().cloned().ok_or_else(no_checkpoint)?;
                let note = "the run has no best checkpoint (it predates them): the newest is used";
                Ok((path, state, Some(note.to_string())))
            }
        },
        CheckpointChoice::Last => {
            let (path, state) = routine.last().cloned().ok_or_else(no_checkpoint)?;
            Ok((path, state, None))
        }
        CheckpointChoice::Epoch(epoch) => routine
            .iter()
            .rev()
            .find(|(_, s)| s.batches_done == 0 && s.epochs_completed == epoch)
            .map(|(path, state)| (path.clone(), state.clone(), None))
            .ok_or_else(|| InferError::NoSuchCheckpoint {
                id: id.to_string(),
                epoch,
                available: routine
                    .iter()
                    .filter(|(_, s)| s.batches_done == 0)
                    .map(|(_, s)| s.epochs_completed.to_string())
                    .collect(),
            }),
    }
}
