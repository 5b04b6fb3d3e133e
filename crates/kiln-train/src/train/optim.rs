//! The optimiser an experiment asks for (Adam, AdamW or SGD with momentum), built from burn's,
//! with its gradient clipping.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::experiment::{OptimizerKind, TrainConfig};

pub fn build(train: &TrainConfig) -> ModuleOptimizer {
    let decay =
        (train.weight_decay > 0.0).then(|| WeightDecayConfig::new(train.weight_decay as f32));
    let clipping = (train.grad_clip_norm > 0.0)
        .then_some(GradientClippingConfig::Norm(train.grad_clip_norm as f32));
    match train.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_weight_decay(decay)
            .with_grad_clipping(clipping)
            .init(),
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_weight_decay(train.weight_decay as f32)
            .with_grad_clipping(clipping)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_gradient_clipping(clipping)
            .with_momentum((train.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(train.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}
