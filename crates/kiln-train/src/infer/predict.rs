//! `kiln predict`: classes and probabilities for image files, in batches, with the run's
//! preprocessing. A file that cannot be read is reported on its own and the rest go on.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{InferError, TrainedModel};
use crate::data::{ImageShape, decode_image};
use crate::train::eval::batch_size;

/// At most this many images are decoded and classified together, so that results stream.
const BATCH: usize = 64;

/// One file's outcome: its top classes (index into the model's classes, probability), most
/// likely first, or why it was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub path: PathBuf,
    pub outcome: Result<Vec<(usize, f32)>, String>,
}

/// The files `inputs` name, folders expanded (recursively, in name order, hidden entries left
/// out); an input that does not exist is reported as a failed prediction.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<Prediction> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            collect_folder(input, &mut files);
        } else if input.exists() {
            files.push(Prediction {
                path: input.clone(),
                outcome: Ok(Vec::new()),
            });
        } else {
            files.push(Prediction {
                path: input.clone(),
                outcome: Err("no such file or folder".into()),
            });
        }
    }
    files
}

fn collect_folder(folder: &Path, files: &mut Vec<Prediction>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(folder) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(err) => {
            files.push(Prediction {
                path: folder.to_path_buf(),
                outcome: Err(err.to_string()),
            });
            return;
        }
    };
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_folder(&path, files);
        } else {
            files.push(Prediction {
                path,
                outcome: Ok(Vec::new()),
            });
        }
    }
}

/// Classifies `files` (from [`expand_inputs`]) in batches, handing each result to `report` in
/// input order as its batch finishes. Files already failed pass through unchanged.
pub fn predict(
    trained: &TrainedModel,
    files: Vec<Prediction>,
    top: usize,
    mut report: impl FnMut(&Prediction),
) -> Result<(), InferError> {
    let p = &trained.preprocessing;
    let shape = ImageShape {
        side: p.height,
        channels: p.channels,
    };
    let normalizer = p.normalizer();
    let classes = p.classes.len();
    let top = top.clamp(1, classes);
    let image_len = p.channels * p.height * p.width;
    let batch = batch_size(&trained.device, image_len).min(BATCH);
    for chunk in files.chunks(batch) {
        let decoded: Vec<Option<Result<Vec<u8>, String>>> = chunk
            .par_iter()
            .map(|file| match &file.outcome {
                Ok(_) => Some(decode_image(&file.path, shape)),
                Err(_) => None,
            })
            .collect();
        let mut floats = Vec::new();
        let mut readable = Vec::new();
        for (i, image) in decoded.iter().enumerate() {
            if let Some(Ok(bytes)) = image {
                normalizer.extend(bytes, &mut floats);
                readable.push(i);
            }
        }
        let probabilities = trained.probabilities(floats, readable.len())?;
        let mut next = 0;
        for (i, (file, image)) in chunk.iter().zip(decoded).enumerate() {
            let outcome = match image {
                None => file.outcome.clone(),
                Some(Err(err)) => Err(err),
                Some(Ok(_)) => {
                    debug_assert_eq!(readable[next], i);
                    let row = &probabilities[next * classes..(next + 1) * classes];
                    next += 1;
                    Ok(top_classes(row, top))
                }
            };
            report(&Prediction {
                path: file.path.clone(),
                outcome,
            });
        }
    }
    Ok(())
}

/// The `k` most probable classes of one row, most likely first (ties: lower index first).
pub fn top_classes(probabilities: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = probabilities.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}
