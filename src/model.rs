//! The CNN an experiment describes: conv blocks (conv → [batch norm] → ReLU → max pool), then a
//! dense head with dropout, whose probability can change while a run trains.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::tensor::{Device, Tensor};

use crate::experiment::ModelConfig;
use crate::flex_ops;

/// Input and output sizes that come from the data rather than the experiment's `[model]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: Option<BatchNorm>,
    norm_after_activation: bool,
    activation: Relu,
    pool: MaxPool2d,
}

impl ConvBlock {
    fn new(
        input: usize,
        output: usize,
        kernel: usize,
        config: &ModelConfig,
        device: &Device,
    ) -> Self {
        let batch_norm = config.batch_norm;
        Self {
            conv: Conv2dConfig::new([input, output], [kernel, kernel])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            norm: batch_norm.then(|| BatchNormConfig::new(output).init(device)),
            norm_after_activation: config.batch_norm_after_relu,
            activation: Relu::new(),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }

    /// `[batch, in, h, w]` → `[batch, out, h / 2, w / 2]`
    fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = flex_ops::conv2d(&self.conv, input);
        let x = match (&self.norm, self.norm_after_activation) {
            (Some(norm), false) => self.activation.forward(flex_ops::batch_norm(norm, x)),
            (Some(norm), true) => flex_ops::batch_norm(norm, self.activation.forward(x)),
            (None, _) => self.activation.forward(x),
        };
        flex_ops::max_pool2d(&self.pool, x)
    }
}

#[derive(Module, Debug)]
pub struct Classifier {
    blocks: Vec<ConvBlock>,
    hidden: Vec<Linear>,
    output: Linear,
    dropout: Dropout,
    dropout_after_conv: bool,
    activation: Relu,
}

impl Classifier {
    pub fn new(config: &ModelConfig, shape: ModelShape, device: &Device) -> Self {
        let mut channels = shape.channels;
        let (mut height, mut width) = (shape.height, shape.width);
        let mut blocks = Vec::with_capacity(config.conv_channels.len());
        for &out in &config.conv_channels {
            blocks.push(ConvBlock::new(
                channels,
                out,
                config.kernel_size,
                config,
                device,
            ));
            channels = out;
            (height, width) = (height / 2, width / 2);
        }
        let mut features = channels * height * width;
        let mut hidden = Vec::with_capacity(config.dense.len());
        for &units in &config.dense {
            hidden.push(LinearConfig::new(features, units).init(device));
            features = units;
        }
        Self {
            blocks,
            hidden,
            output: LinearConfig::new(features, shape.classes).init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            dropout_after_conv: config.dropout_after_conv,
            activation: Relu::new(),
        }
    }

    /// `[batch, channels, height, width]` → logits `[batch, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for block in &self.blocks {
            x = block.forward(x);
            if self.dropout_after_conv {
                x = self.dropout.forward(x);
            }
        }
        let mut x: Tensor<2> = x.flatten(1, 3);
        if self.hidden.is_empty() && !self.dropout_after_conv {
            // With no hidden layer the only place left for dropout is the flattened features.
            x = self.dropout.forward(x);
        }
        for layer in &self.hidden {
            x = self
                .dropout
                .forward(self.activation.forward(layer.forward(x)));
        }
        self.output.forward(x)
    }

    pub fn dropout(&self) -> f64 {
        self.dropout.prob
    }

    /// Changes the dropout probability from the next forward pass on; `prob` must be in [0, 1).
    pub fn set_dropout(&mut self, prob: f64) {
        self.dropout.prob = prob;
    }
}
