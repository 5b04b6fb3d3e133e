//! The loss a run trains on: burn's cross-entropy with the experiment's class weights and label
//! smoothing. Validation keeps plain cross-entropy, so runs with and without them compare.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::tensor::Device;

use crate::experiment::TrainConfig;

/// The training loss; `weights` are the resolved class weights (see `kiln_core::balance`).
pub fn training_loss(
    train: &TrainConfig,
    weights: Option<&[f64]>,
    device: &Device,
) -> CrossEntropyLoss {
    CrossEntropyLossConfig::new()
        .with_weights(weights.map(|w| w.iter().map(|&v| v as f32).collect()))
        .with_smoothing((train.label_smoothing > 0.0).then_some(train.label_smoothing as f32))
        .init(device)
}
