//! The model an experiment describes: kiln's CNN (conv blocks — conv → [batch norm] → ReLU →
//! max pool — then a dense head), or a ResNet / MobileNetV2 backbone with a linear head; either
//! way with dropout before the output, whose probability can change while a run trains.

use burn::module::{Module, ModuleMapper, Param, ParamGroup};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::tensor::{Device, FloatDType, Tensor};

use crate::backbone::mobilenet::{self, MobileNetV2};
use crate::backbone::resnet::{Depth, ResNet};
use crate::experiment::{Backbone, ModelConfig, Precision};
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
            (Some(norm), false) => self.activation.forward(normalize(norm, x)),
            (Some(norm), true) => normalize(norm, self.activation.forward(x)),
            (None, _) => self.activation.forward(x),
        };
        flex_ops::max_pool2d(&self.pool, x)
    }
}

/// Batch norm in f32 whatever the input's precision (see [`flex_ops::batch_norm_in_f32`]).
fn normalize(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    flex_ops::batch_norm_in_f32(norm, x)
}

/// One model for every experiment: with a backbone its conv blocks and hidden layers are empty
/// and `output` is the backbone's head. (Separate optional fields rather than an enum keep the
/// checkpoints of CNN runs from before backbones loadable: their tensors' paths are unchanged.)
#[derive(Module, Debug)]
pub struct Classifier {
    blocks: Vec<ConvBlock>,
    hidden: Vec<Linear>,
    output: Linear,
    dropout: Dropout,
    dropout_after_conv: bool,
    activation: Relu,
    resnet: Option<ResNet>,
    mobilenet: Option<MobileNetV2>,
    /// Whether the backbone is frozen (no gradients, batch norm in inference mode).
    backbone_frozen: bool,
}

impl Classifier {
    pub fn new(config: &ModelConfig, shape: ModelShape, device: &Device) -> Self {
        match config.backbone {
            Some(backbone) => Self::with_backbone(backbone, config, shape, device),
            None => Self::cnn(config, shape, device),
        }
    }

    /// A backbone, kiln's dropout, and a linear layer from its features to the classes.
    fn with_backbone(
        backbone: Backbone,
        config: &ModelConfig,
        shape: ModelShape,
        device: &Device,
    ) -> Self {
        let depth = match backbone {
            Backbone::Resnet18 => Some(Depth::R18),
            Backbone::Resnet34 => Some(Depth::R34),
            Backbone::Resnet50 => Some(Depth::R50),
            Backbone::MobilenetV2 => None,
        };
        let features = depth.map_or(mobilenet::FEATURES, ResNet::features);
        Self {
            blocks: Vec::new(),
            hidden: Vec::new(),
            output: LinearConfig::new(features, shape.classes).init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            dropout_after_conv: false,
            activation: Relu::new(),
            resnet: depth.map(|d| ResNet::new(d, shape.channels, device)),
            mobilenet: depth
                .is_none()
                .then(|| MobileNetV2::new(shape.channels, device)),
            backbone_frozen: false,
        }
    }

    fn cnn(config: &ModelConfig, shape: ModelShape, device: &Device) -> Self {
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
            resnet: None,
            mobilenet: None,
            backbone_frozen: false,
        }
    }

    /// `[batch, channels, height, width]` → logits `[batch, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let features = match (&self.resnet, &self.mobilenet) {
            (Some(resnet), _) => resnet.forward(images),
            (None, Some(mobilenet)) => mobilenet.forward(images),
            (None, None) => return self.cnn_forward(images),
        };
        self.output.forward(self.dropout.forward(features))
    }

    /// Kiln's CNN: conv blocks, then the dense head.
    fn cnn_forward(&self, images: Tensor<4>) -> Tensor<2> {
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

    /// [`Classifier::forward`] computing in `precision`; the logits are f32 either way. In bf16
    /// the layers run on bf16 copies of the f32 weights, made by a cast that autodiff tracks,
    /// so the gradients arrive in f32 on the f32 weights the optimiser keeps (mixed precision).
    pub fn forward_in(&self, images: Tensor<4>, precision: Precision) -> Tensor<2> {
        match precision {
            Precision::F32 => self.forward(images),
            Precision::Bf16 => {
                let half = self.clone().map(&mut CastWeights::to(FloatDType::BF16));
                half.forward(images.cast(FloatDType::BF16))
                    .cast(FloatDType::F32)
            }
        }
    }

    /// The parameters an optimiser trains: every float tensor but batch norm's running
    /// statistics, which burn's `num_params` counts too (PyTorch's `parameters()` does not).
    pub fn trainable_params(&self) -> usize {
        let mut counter = TrainableCounter::default();
        self.visit(&mut counter);
        counter.count
    }

    /// The backbone's parameters (as [`Classifier::trainable_params`] counts them); `None`
    /// for kiln's CNN.
    pub fn backbone_params(&self) -> Option<usize> {
        let mut counter = TrainableCounter::default();
        match (&self.resnet, &self.mobilenet) {
            (Some(resnet), _) => resnet.visit(&mut counter),
            (None, Some(mobilenet)) => mobilenet.visit(&mut counter),
            (None, None) => return None,
        }
        Some(counter.count)
    }

    /// The backbone's parameters as a group (burn's), for a learning rate of their own;
    /// `None` for kiln's CNN.
    pub fn backbone_group(&self) -> Option<ParamGroup> {
        match (&self.resnet, &self.mobilenet) {
            (Some(resnet), _) => Some(ParamGroup::ids_from_module(resnet.clone())),
            (None, Some(mobilenet)) => Some(ParamGroup::ids_from_module(mobilenet.clone())),
            (None, None) => None,
        }
    }

    pub fn has_backbone(&self) -> bool {
        self.resnet.is_some() || self.mobilenet.is_some()
    }

    pub fn dropout(&self) -> f64 {
        self.dropout.prob
    }

    pub fn backbone_frozen(&self) -> bool {
        self.backbone_frozen
    }

    /// Freezes or unfreezes the backbone, if there is one: frozen, its weights get no gradients
    /// and its batch norms normalise with their running statistics, leaving them untouched
    /// (burn's `freeze`); the head trains either way.
    pub fn with_backbone_frozen(mut self, frozen: bool) -> Self {
        self.resnet = self
            .resnet
            .map(|m| if frozen { m.freeze() } else { m.unfreeze() });
        self.mobilenet = self
            .mobilenet
            .map(|m| if frozen { m.freeze() } else { m.unfreeze() });
        self.backbone_frozen = frozen && self.has_backbone();
        self
    }

    /// Changes the dropout probability from the next forward pass on; `prob` must be in [0, 1).
    pub fn set_dropout(&mut self, prob: f64) {
        self.dropout.prob = prob;
    }
}

/// Counts float tensors by size, leaving out batch norm's running statistics (known by their
/// field names).
#[derive(Default)]
struct TrainableCounter {
    fields: Vec<String>,
    count: usize,
}

impl burn::module::ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.fields.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.fields.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let statistic = matches!(
            self.fields.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !statistic {
            self.count += param.shape().num_elements();
        }
    }
}

/// Casts every float weight to one precision, except batch norm's (kept f32, see [`normalize`];
/// mapping its running statistics would also change the f32 model's, which share them).
struct CastWeights {
    dtype: FloatDType,
    /// How deep inside a batch norm layer the walk is.
    in_batch_norm: usize,
}

impl CastWeights {
    fn to(dtype: FloatDType) -> Self {
        Self {
            dtype,
            in_batch_norm: 0,
        }
    }
}

impl ModuleMapper for CastWeights {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        if container_type == "Struct:BatchNorm" {
            self.in_batch_norm += 1;
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if container_type == "Struct:BatchNorm" {
            self.in_batch_norm -= 1;
        }
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.in_batch_norm > 0 {
            return param;
        }
        let dtype = self.dtype;
        param.map(|weight| weight.cast(dtype))
    }
}
