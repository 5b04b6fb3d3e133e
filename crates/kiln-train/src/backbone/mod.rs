//! Pretrained-style backbones in torchvision's architecture, built from burn's modules: ResNet
//! ([`resnet`]) and MobileNetV2 ([`mobilenet`]). Their layers are laid out as torchvision's, so
//! its weights can fit; the head (kiln's dropout, then a linear layer for the data's classes)
//! is the classifier's.

pub mod mobilenet;
pub mod resnet;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// A convolution without bias (batch norm follows each in both families), padded to keep the
/// size at stride 1.
fn conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

fn norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

/// Batch norm in f32 whatever the input's precision.
fn normalize(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    crate::flex_ops::batch_norm_in_f32(norm, x)
}
