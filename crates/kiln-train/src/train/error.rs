//! Why a run could not start or go on. Each becomes the run's `failed` event, in these words.

use super::backend::BackendError;
use super::checkpoint::CheckpointError;
use crate::data::DataError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(
        "dataset {dataset} is too small to split: {train} training and {validation} validation \
         images"
    )]
    TooSmallToSplit {
        dataset: String,
        train: usize,
        validation: usize,
    },
    #[error(transparent)]
    Weights(#[from] crate::pretrained::WeightsError),
    #[error(transparent)]
    ClassWeights(#[from] kiln_core::balance::WeightsMismatch),
    #[error("cannot load the checkpoint: {0}")]
    Restore(#[source] CheckpointError),
    #[error("cannot read metrics from the device: {0}")]
    DeviceRead(String),
    #[error("cannot start the loader thread: {0}")]
    LoaderStart(#[source] std::io::Error),
    #[error("the loader thread ended early")]
    LoaderEnded,
}
