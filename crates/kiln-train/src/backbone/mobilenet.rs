//! MobileNetV2 as torchvision builds it (width 1.0): a 3×3 stem, seventeen inverted residual
//! blocks (1×1 expansion, 3×3 depthwise, 1×1 linear projection, a shortcut where the shape
//! allows), a 1×1 convolution to 1280 channels and a global average pool. The layers come in
//! torchvision's order (`stem` is its `features.0`, `blocks` its `features.1`–`17`, `last` its
//! `features.18`), so its weights map onto them name by name.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::activation::Relu6;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::{conv, norm, normalize};
use crate::flex_ops::conv2d;

/// Features per image after the global pool.
pub const FEATURES: usize = 1280;

/// torchvision's table: expansion t, output channels c, repeats n, first stride s.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Convolution, batch norm, ReLU6 (torchvision's `Conv2dNormActivation`).
#[derive(Module, Debug)]
pub struct ConvNormActivation {
    conv: Conv2d,
    norm: BatchNorm,
    activation: Relu6,
}

impl ConvNormActivation {
    fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        Self {
            conv: conv(channels, kernel, stride, groups, device),
            norm: norm(channels[1], device),
            activation: Relu6::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.activation
            .forward(normalize(&self.norm, conv2d(&self.conv, x)))
    }
}

#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// The 1×1 expansion (absent when the expansion factor is 1).
    expand: Option<ConvNormActivation>,
    depthwise: ConvNormActivation,
    project: Conv2d,
    project_norm: BatchNorm,
    shortcut: bool,
}

impl InvertedResidual {
    fn new(input: usize, output: usize, stride: usize, expansion: usize, device: &Device) -> Self {
        let hidden = input * expansion;
        Self {
            expand: (expansion != 1)
                .then(|| ConvNormActivation::new([input, hidden], 1, 1, 1, device)),
            depthwise: ConvNormActivation::new([hidden, hidden], 3, stride, hidden, device),
            project: conv([hidden, output], 1, 1, 1, device),
            project_norm: norm(output, device),
            shortcut: stride == 1 && input == output,
        }
    }

    fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let Some(expand) = &self.expand {
            x = expand.forward(x);
        }
        let x = normalize(
            &self.project_norm,
            self.project.forward(self.depthwise.forward(x)),
        );
        if self.shortcut { x + input } else { x }
    }
}

#[derive(Module, Debug)]
pub struct MobileNetV2 {
    stem: ConvNormActivation,
    blocks: Vec<InvertedResidual>,
    last: ConvNormActivation,
    avgpool: AdaptiveAvgPool2d,
}

impl MobileNetV2 {
    /// A MobileNetV2 on `channels`-channel images, freshly initialised.
    pub fn new(channels: usize, device: &Device) -> Self {
        let mut input = 32;
        let mut blocks = Vec::new();
        for (expansion, output, repeats, stride) in SETTINGS {
            for i in 0..repeats {
                let stride = if i == 0 { stride } else { 1 };
                blocks.push(InvertedResidual::new(
                    input, output, stride, expansion, device,
                ));
                input = output;
            }
        }
        Self {
            stem: ConvNormActivation::new([channels, 32], 3, 2, 1, device),
            blocks,
            last: ConvNormActivation::new([input, FEATURES], 1, 1, 1, device),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }

    /// `[batch, channels, h, w]` → `[batch, 1280]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.avgpool
            .forward(self.last.forward(x))
            .flatten::<2>(1, 3)
    }
}
