//! The datasets compiled into kiln: UCI digits (8×8) and a 5,000-image subset of MNIST (28×28).

use std::io::Read;

use super::decode::{Shape, from_grey};
use super::{DataError, Dataset};
use crate::experiment::datasets::{self, BundledDataset};

const DIGITS: &[u8] = include_bytes!("../../../../data/digits.csv.gz");
const MNIST_5K: &[u8] = include_bytes!("../../../../data/mnist_5k.csv.gz");

/// Decodes one of the datasets compiled in.
pub fn load(dataset: BundledDataset, shape: Shape) -> Result<Dataset, DataError> {
    let (bytes, max_value) = if dataset == datasets::DIGITS {
        // Digits pixels run 0..=16; scale to the 0..=255 every other source uses.
        (DIGITS, 16)
    } else {
        (MNIST_5K, 255)
    };
    parse(dataset.name, bytes, dataset.side, max_value, shape)
}

/// Rows of `side²` pixel values then a label 0–9, gzip-compressed CSV without header.
fn parse(
    name: &str,
    gz: &[u8],
    side: usize,
    max_value: u32,
    shape: Shape,
) -> Result<Dataset, DataError> {
    let damaged = |problem: String| DataError::Bundled {
        name: name.to_string(),
        problem,
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|err| damaged(err.to_string()))?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (row, line) in text.lines().enumerate() {
        let values: Vec<u32> = line
            .split(',')
            .map(|v| v.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|err| damaged(format!("row {}: {err}", row + 1)))?;
        let Some((&label, image)) = values.split_last() else {
            continue;
        };
        if image.len() != side * side || label > 9 {
            return Err(damaged(format!("row {}: unexpected shape", row + 1)));
        }
        let grey = image
            .iter()
            .map(|&v| ((v.min(max_value) * 255 + max_value / 2) / max_value) as u8)
            .collect();
        pixels.extend(from_grey(grey, side, shape));
        labels.push(label as usize);
    }
    Ok(Dataset {
        name: name.to_string(),
        classes: (0..10).map(|d| d.to_string()).collect(),
        channels: shape.channels,
        height: shape.side,
        width: shape.side,
        pixels,
        labels,
        skipped: Vec::new(),
    })
}
