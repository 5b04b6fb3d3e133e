//! Class balance: the weights `train.class_weights` puts on each class's share of the training
//! loss, resolved against the classes and training images a run actually has.

use crate::experiment::{ClassWeights, WeightRule};

/// Why the weights an experiment gives do not fit its data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "train.class_weights gives {given} weight(s) but the data has {} classes ({}); \
     give one per class in that order, or \"balanced\"",
    .classes.len(), .classes.join(", ")
)]
pub struct WeightsMismatch {
    pub given: usize,
    pub classes: Vec<String>,
}

/// The weight of each class, or `None` when the loss is unweighted. `counts` are the training
/// images of each class; a class without any gets weight 1 (it is never a target, and the loss
/// needs every weight positive).
pub fn class_weights(
    config: Option<&ClassWeights>,
    counts: &[usize],
    classes: &[String],
) -> Result<Option<Vec<f64>>, WeightsMismatch> {
    match config {
        None => Ok(None),
        Some(ClassWeights::Rule(WeightRule::Balanced)) => {
            let total: usize = counts.iter().sum();
            let k = counts.len() as f64;
            Ok(Some(
                counts
                    .iter()
                    .map(|&n| {
                        if n == 0 {
                            1.0
                        } else {
                            total as f64 / (k * n as f64)
                        }
                    })
                    .collect(),
            ))
        }
        Some(ClassWeights::Given(weights)) if weights.len() == classes.len() => {
            Ok(Some(weights.clone()))
        }
        Some(ClassWeights::Given(weights)) => Err(WeightsMismatch {
            given: weights.len(),
            classes: classes.to_vec(),
        }),
    }
}

/// The weights as the run-start line says them: `balanced (0.55, 5.50)` or `[1, 3]`.
pub fn describe(config: &ClassWeights, resolved: &[f64]) -> String {
    let numbers: Vec<String> = resolved.iter().map(|w| format!("{w:.2}")).collect();
    match config {
        ClassWeights::Rule(WeightRule::Balanced) => format!("balanced ({})", numbers.join(", ")),
        ClassWeights::Given(_) => format!("[{}]", numbers.join(", ")),
    }
}
