//! `kiln evaluate`: a trained model scored on its own validation split or on other data, with
//! per-class scores and the confusion matrix.

use std::path::Path;

use serde::Serialize;

use super::{InferError, RunData, TrainedModel};
use crate::data::{self, Dataset};
use crate::experiment::{DataConfig, Experiment};
use crate::protocol::ClassCounts;
use crate::train::eval;

/// What an evaluation found, as printed and as `--json` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationReport {
    pub run_id: String,
    /// The checkpoint folder used, relative to the run.
    pub checkpoint: String,
    /// Epochs the checkpoint's weights had trained.
    pub epochs_completed: usize,
    /// `validation split of DATASET` or the other data's name.
    pub data: String,
    pub images: usize,
    /// Files of the other data that could not be decoded and were left out.
    pub skipped: usize,
    pub loss: f64,
    pub accuracy: f64,
    /// The model's classes, in the order of the counts.
    pub class_names: Vec<String>,
    pub classes: ClassCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Evaluates `trained` on its run's validation split, or on `other` data: a bundled dataset's
/// name, an image folder, or an experiment file whose `[data]` says where and how (CSV).
pub fn evaluate(
    trained: &TrainedModel,
    other: Option<&str>,
) -> Result<EvaluationReport, InferError> {
    let (dataset, indices, description) = match other {
        None => {
            let RunData { dataset, split } = RunData::load(&trained.experiment)?;
            let description = format!("validation split of {}", dataset.name);
            (dataset, split.validation, description)
        }
        Some(other) => {
            let dataset = load_other(other, trained)?;
            let all = (0..dataset.len()).collect();
            (dataset, all, other.to_string())
        }
    };
    let labels = model_labels(&dataset, &indices, &trained.preprocessing.classes)?;
    let images = trained
        .preprocessing
        .normalizer()
        .images(&dataset, &indices);
    let evaluation = eval::evaluate(
        &trained.model,
        &trained.device,
        &images,
        &labels,
        dataset.image_len(),
        trained.shape,
    )?;
    Ok(EvaluationReport {
        run_id: trained.run_id.clone(),
        checkpoint: trained.checkpoint.clone(),
        epochs_completed: trained.state.epochs_completed,
        data: description,
        images: indices.len(),
        skipped: dataset.skipped.len(),
        loss: evaluation.loss,
        accuracy: evaluation.accuracy,
        class_names: trained.preprocessing.classes.clone(),
        classes: evaluation.classes,
        note: trained.note.clone(),
    })
}

/// Other data, brought to the model's image size and channels.
fn load_other(other: &str, trained: &TrainedModel) -> Result<Dataset, InferError> {
    let p = &trained.preprocessing;
    let is_experiment = other.ends_with(".toml");
    let mut config = if is_experiment {
        Experiment::load(Path::new(other), &[])?.data
    } else {
        DataConfig {
            dataset: other.to_string(),
            ..DataConfig::default()
        }
    };
    // Brought to the model's input unless the experiment file says otherwise (which the shape
    // check below then catches).
    if p.height == p.width {
        config.image_size.get_or_insert(p.height);
    }
    config.channels.get_or_insert(p.channels);
    let dataset = data::load(&config).map_err(|err| InferError::Data(err.to_string()))?;
    let (got, expected) = (
        (dataset.channels, dataset.height, dataset.width),
        (p.channels, p.height, p.width),
    );
    if got != expected {
        let shape = |(c, h, w): (usize, usize, usize)| format!("{c}×{h}×{w}");
        return Err(InferError::ShapeMismatch {
            data: other.to_string(),
            got: shape(got),
            expected: shape(expected),
        });
    }
    Ok(dataset)
}

/// Each image's label as an index into the model's classes (matched by name); data with a
/// class the model does not know is refused, naming it.
pub(super) fn model_labels(
    dataset: &Dataset,
    indices: &[usize],
    known: &[String],
) -> Result<Vec<i64>, InferError> {
    let mapping: Vec<Option<usize>> = dataset
        .classes
        .iter()
        .map(|name| known.iter().position(|k| k == name))
        .collect();
    let unknown: Vec<String> = dataset
        .classes
        .iter()
        .zip(&mapping)
        .filter(|(_, index)| index.is_none())
        .map(|(name, _)| name.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(InferError::ClassMismatch {
            unknown,
            known: known.to_vec(),
        });
    }
    Ok(indices
        .iter()
        .map(|&i| mapping[dataset.labels[i]].expect("checked above") as i64)
        .collect())
}
