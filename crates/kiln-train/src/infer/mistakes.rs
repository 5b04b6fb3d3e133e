//! The validation images a model gets wrong, most confident first, and their export as PNG
//! files named `true-predicted-confidence-index.png`.

use std::path::{Path, PathBuf};

use super::evaluate::model_labels;
use super::{InferError, RunData, TrainedModel};
use crate::data::Dataset;
use crate::train::eval::batch_size;

/// One wrong prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistake {
    /// The image's index in the run's dataset.
    pub index: usize,
    /// Class indices into the model's classes.
    pub truth: usize,
    pub predicted: usize,
    /// The predicted class's probability.
    pub confidence: f32,
}

/// The run's validation images `trained` classifies wrongly, the most confident mistakes
/// first (those say most about what the model learned wrong).
pub fn find(trained: &TrainedModel, data: &RunData) -> Result<Vec<Mistake>, InferError> {
    let indices = &data.split.validation;
    let labels = model_labels(&data.dataset, indices, &trained.preprocessing.classes)?;
    let normalizer = trained.preprocessing.normalizer();
    let classes = trained.shape.classes;
    let batch = batch_size(&trained.device, data.dataset.image_len());
    let mut mistakes = Vec::new();
    for (chunk, chunk_labels) in indices.chunks(batch).zip(labels.chunks(batch)) {
        let floats = normalizer.images(&data.dataset, chunk);
        let probabilities = trained.probabilities(floats, chunk.len())?;
        for ((&index, &truth), row) in chunk
            .iter()
            .zip(chunk_labels)
            .zip(probabilities.chunks(classes))
        {
            let (predicted, confidence) = super::predict::top_classes(row, 1)[0];
            if predicted != truth as usize {
                mistakes.push(Mistake {
                    index,
                    truth: truth as usize,
                    predicted,
                    confidence,
                });
            }
        }
    }
    mistakes.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.index.cmp(&b.index))
    });
    Ok(mistakes)
}

/// Writes each mistake's image into `dir` (made if missing); returns the files written.
pub fn write(
    mistakes: &[Mistake],
    dataset: &Dataset,
    class_names: &[String],
    dir: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let name = |c: usize| crate::runs::sanitise(class_names.get(c).map_or("?", String::as_str));
    let mut written = Vec::new();
    for m in mistakes {
        let file = dir.join(format!(
            "{}-{}-{:.2}-{:05}.png",
            name(m.truth),
            name(m.predicted),
            m.confidence,
            m.index
        ));
        save_png(dataset, m.index, &file)?;
        written.push(file);
    }
    Ok(written)
}

/// One dataset image (planar bytes) as a grey or RGB PNG.
fn save_png(dataset: &Dataset, index: usize, path: &Path) -> std::io::Result<()> {
    let (w, h) = (dataset.width as u32, dataset.height as u32);
    let planar = dataset.image(index);
    let result = if dataset.channels == 1 {
        image::GrayImage::from_raw(w, h, planar.to_vec()).map(|img| img.save(path))
    } else {
        Some(dataset.rgb_image(planar).save(path))
    };
    match result {
        Some(saved) => saved.map_err(std::io::Error::other),
        None => Err(std::io::Error::other(
            "image size does not match its pixels",
        )),
    }
}
