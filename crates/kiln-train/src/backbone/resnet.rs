//! ResNet-18, -34 and -50 as torchvision builds them: a 7×7 stem and max pool, four stages of
//! residual blocks (basic blocks for 18 and 34, bottlenecks for 50) that halve the size and
//! double the width, then a global average pool. Layer names follow torchvision's
//! (`conv1`, `bn1`, `layer1.0.conv1`, …; its `downsample.0` and `.1` are `downsample.conv` and
//! `.norm` here).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor};

use super::{conv, norm, normalize};
use crate::flex_ops::conv2d;

/// Which ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    R18,
    R34,
    R50,
}

impl Depth {
    /// Blocks in each of the four stages.
    fn blocks(self) -> [usize; 4] {
        match self {
            Depth::R18 => [2, 2, 2, 2],
            Depth::R34 | Depth::R50 => [3, 4, 6, 3],
        }
    }

    /// Output channels over a block's width: 1 for basic blocks, 4 for bottlenecks.
    fn expansion(self) -> usize {
        match self {
            Depth::R50 => 4,
            _ => 1,
        }
    }
}

/// The 1×1 convolution and batch norm that bring a block's input to its output's shape
/// (torchvision's `downsample.0` and `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    norm: BatchNorm,
}

/// A residual block: basic (two 3×3 convolutions) or bottleneck (1×1, 3×3, 1×1), the stride on
/// the 3×3 as torchvision places it.
#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Option<Conv2d>,
    bn3: Option<BatchNorm>,
    downsample: Option<Downsample>,
    relu: Relu,
}

impl Block {
    fn new(input: usize, width: usize, stride: usize, depth: Depth, device: &Device) -> Self {
        let output = width * depth.expansion();
        let downsample = (stride != 1 || input != output).then(|| Downsample {
            conv: conv([input, output], 1, stride, 1, device),
            norm: norm(output, device),
        });
        match depth.expansion() {
            1 => Self {
                conv1: conv([input, width], 3, stride, 1, device),
                bn1: norm(width, device),
                conv2: conv([width, width], 3, 1, 1, device),
                bn2: norm(width, device),
                conv3: None,
                bn3: None,
                downsample,
                relu: Relu::new(),
            },
            _ => Self {
                conv1: conv([input, width], 1, 1, 1, device),
                bn1: norm(width, device),
                conv2: conv([width, width], 3, stride, 1, device),
                bn2: norm(width, device),
                conv3: Some(conv([width, output], 1, 1, 1, device)),
                bn3: Some(norm(output, device)),
                downsample,
                relu: Relu::new(),
            },
        }
    }

    fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = self
            .relu
            .forward(normalize(&self.bn1, conv2d(&self.conv1, input.clone())));
        let mut x = normalize(&self.bn2, conv2d(&self.conv2, x));
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            x = normalize(bn3, conv2d(conv3, self.relu.forward(x)));
        }
        let identity = match &self.downsample {
            Some(d) => normalize(&d.norm, conv2d(&d.conv, input)),
            None => input,
        };
        self.relu.forward(x + identity)
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    relu: Relu,
    maxpool: MaxPool2d,
    layer1: Vec<Block>,
    layer2: Vec<Block>,
    layer3: Vec<Block>,
    layer4: Vec<Block>,
    avgpool: AdaptiveAvgPool2d,
}

impl ResNet {
    /// A ResNet of `depth` on `channels`-channel images, freshly initialised.
    pub fn new(depth: Depth, channels: usize, device: &Device) -> Self {
        let mut input = 64;
        let mut stages = Vec::with_capacity(4);
        for (stage, &count) in depth.blocks().iter().enumerate() {
            let width = 64 << stage;
            let stride = if stage == 0 { 1 } else { 2 };
            let mut blocks = Vec::with_capacity(count);
            for i in 0..count {
                blocks.push(Block::new(
                    input,
                    width,
                    if i == 0 { stride } else { 1 },
                    depth,
                    device,
                ));
                input = width * depth.expansion();
            }
            stages.push(blocks);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().unwrap_or_default();
        Self {
            conv1: conv([channels, 64], 7, 2, 1, device),
            bn1: norm(64, device),
            relu: Relu::new(),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
        }
    }

    /// Features per image after the global pool: 512, or 2048 for ResNet-50.
    pub fn features(depth: Depth) -> usize {
        512 * depth.expansion()
    }

    /// `[batch, channels, h, w]` → `[batch, features]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self
            .relu
            .forward(normalize(&self.bn1, conv2d(&self.conv1, images)));
        let mut x = self.maxpool.forward(x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        self.avgpool.forward(x).flatten::<2>(1, 3)
    }
}
