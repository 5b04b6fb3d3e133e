//! What a trained model expects of an image: its classes, size, channels and the normaliser
//! fitted on its training split. Saved with each run so a model can be used without its data.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Dataset, Normalizer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Per-channel mean and standard deviation of the training images (0–1 units).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Preprocessing {
    pub fn new(dataset: &Dataset, normalizer: &Normalizer) -> Self {
        Self {
            classes: dataset.classes.clone(),
            channels: dataset.channels,
            height: dataset.height,
            width: dataset.width,
            mean: normalizer.mean.clone(),
            std: normalizer.std.clone(),
        }
    }

    pub fn normalizer(&self) -> Normalizer {
        Normalizer {
            mean: self.mean.clone(),
            std: self.std.clone(),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }

    /// The saved preprocessing, `None` when the file is absent (runs from before kiln kept it).
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| format!("{}: {err}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(format!("{}: {err}", path.display())),
        }
    }
}
