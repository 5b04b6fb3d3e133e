//! Datasets in memory: loading them (bundled, image folder, CSV-labelled), the stratified split,
//! augmentation and the loader thread that prepares batches ahead of the trainer.

mod augment;
mod bundled;
mod decode;
mod folder;
mod loader;
mod preprocessing;
pub mod sampler;
mod split;

use std::path::Path;

use crate::experiment::DataConfig;

pub use augment::Augmenter;
pub use decode::{Shape as ImageShape, decode_image};
pub use loader::{Batch, Loader, LoaderPlan, Normalizer};
pub use preprocessing::Preprocessing;
pub use split::{Split, stratified_split};

/// Decoded images held as bytes (0–255), planar per image: `[n, channels, height, width]`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
    /// Files that could not be decoded and were left out.
    pub skipped: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub fn image(&self, index: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[index * len..(index + 1) * len]
    }

    /// A planar image of this dataset's shape (one of its own, or an augmented copy) as RGB;
    /// grey is repeated into the three channels.
    pub fn rgb_image(&self, planar: &[u8]) -> image::RgbImage {
        let (w, h) = (self.width, self.height);
        let plane = w * h;
        image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let at = y as usize * w + x as usize;
            let value = |c: usize| planar[c.min(self.channels - 1) * plane + at];
            image::Rgb([value(0), value(1), value(2)])
        })
    }

    /// One line for warnings: how many files were skipped and the first few names.
    pub fn skipped_summary(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let first: Vec<&str> = self.skipped.iter().take(3).map(String::as_str).collect();
        let more = if self.skipped.len() > 3 { ", …" } else { "" };
        Some(format!(
            "skipped {} unreadable image{}: {}{more}",
            self.skipped.len(),
            if self.skipped.len() == 1 { "" } else { "s" },
            first.join(", ")
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bundled dataset {name} is damaged: {problem}")]
    Bundled { name: String, problem: String },
    #[error("{path}: no images found (expected {layout})")]
    Empty { path: String, layout: String },
    #[error("class \"{class}\" has no readable images{}", skipped_note(*.skipped))]
    EmptyClass { class: String, skipped: usize },
    #[error("{path}: no column \"{column}\" (columns: {available}); set data.{key}")]
    MissingColumn {
        path: String,
        column: String,
        available: String,
        key: &'static str,
    },
    #[error("{path}: line {line}: {problem}")]
    BadRow {
        path: String,
        line: usize,
        problem: String,
    },
    #[error("{path} names {count} image(s) that do not exist, first: {first}")]
    MissingFiles {
        path: String,
        count: usize,
        first: String,
    },
}

fn skipped_note(skipped: usize) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(" ({skipped} file(s) could not be decoded)")
    }
}

/// Loads the dataset an experiment names, resized to its image size and channel count.
pub fn load(config: &DataConfig) -> Result<Dataset, DataError> {
    let shape = decode::Shape {
        side: config.image_side(),
        channels: config.channel_count(),
    };
    let path = config.dataset.as_str();
    let dataset = match crate::experiment::datasets::bundled(path) {
        Some(dataset) => bundled::load(dataset, shape)?,
        None => match &config.csv {
            Some(csv) => folder::csv_labelled(
                Path::new(path),
                csv,
                &config.image_dir,
                &config.image_column,
                &config.label_column,
                shape,
            )?,
            None => folder::image_folder(Path::new(path), shape)?,
        },
    };
    check_classes(&dataset)?;
    Ok(dataset)
}

/// Every class must keep at least one image after unreadable files were dropped.
fn check_classes(dataset: &Dataset) -> Result<(), DataError> {
    let mut counts = vec![0usize; dataset.classes.len()];
    for &label in &dataset.labels {
        counts[label] += 1;
    }
    match counts.iter().position(|&count| count == 0) {
        Some(empty) => Err(DataError::EmptyClass {
            class: dataset.classes[empty].clone(),
            skipped: dataset.skipped.len(),
        }),
        None => Ok(()),
    }
}
