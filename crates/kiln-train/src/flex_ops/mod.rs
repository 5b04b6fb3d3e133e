//! Faster CPU paths for the model's layers on burn's flex backend, plugged in through burn's
//! backend-extension mechanism (no fork of burn): other backends keep burn's own ops.

mod batch_norm;
mod conv;
mod extension;
mod pool;
mod scratch;
mod strided_conv;

use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::{DType, Dispatch};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use extension::{ConvKernel, KilnCpuOps};

/// Which implementation runs the model's convolutions, batch norms and pooling on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuKernels {
    /// kiln's own kernels (the default on flex).
    Kiln,
    /// burn-flex's and burn-backend's, for comparison (`KILN_CPU_KERNELS=burn`).
    Burn,
}

/// 0 until first read, then `CpuKernels as u8 + 1`.
static CPU_KERNELS: AtomicU8 = AtomicU8::new(0);

impl CpuKernels {
    /// The choice in force: the last [`CpuKernels::select`], else `KILN_CPU_KERNELS` (`kiln` or
    /// `burn`), else kiln's.
    pub fn current() -> Self {
        match CPU_KERNELS.load(Ordering::Relaxed) {
            1 => Self::Kiln,
            2 => Self::Burn,
            _ => {
                let choice = match std::env::var("KILN_CPU_KERNELS").as_deref() {
                    Ok("burn") => Self::Burn,
                    _ => Self::Kiln,
                };
                choice.select();
                choice
            }
        }
    }

    /// Makes this the implementation for the whole process from the next forward pass on.
    pub fn select(self) {
        CPU_KERNELS.store(self as u8 + 1, Ordering::Relaxed);
    }
}

/// `conv.forward(input)`, through kiln's convolutions where they apply (flex, f32, one group,
/// no dilation, zeros padded symmetrically: the same-size kernel for stride 1 with an odd square
/// kernel padded by half its size, the strided one otherwise) and burn's everywhere else.
pub fn conv2d(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let Some(kind) = kiln_conv(conv, &input) else {
        return conv.forward(input);
    };
    // A layer without a bias (a ResNet's, followed by batch norm) adds zeros: a constant, so
    // nothing trains it and its gradient is dropped.
    let bias = match &conv.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([conv.weight.dims()[0]], &input.device()),
    };
    let (x, weight, bias) = (
        input.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.into_dispatch(),
    );
    Tensor::from_dispatch(<Dispatch as KilnCpuOps>::conv2d(x, weight, bias, kind))
}

/// Whether [`conv2d`] runs kiln's convolution for this layer and input (rather than burn's).
pub fn runs_on_kiln_conv(conv: &Conv2d, input: &Tensor<4>) -> bool {
    kiln_conv(conv, input).is_some()
}

fn kiln_conv(conv: &Conv2d, input: &Tensor<4>) -> Option<ConvKernel> {
    let [kh, kw] = conv.kernel_size;
    let eligible = CpuKernels::current() == CpuKernels::Kiln
        && is_flex(&input.device())
        && input.dtype() == DType::F32
        && conv.weight.val().dtype() == DType::F32
        && conv.dilation == [1, 1]
        && conv.groups == 1;
    if !eligible {
        return None;
    }
    let padding = match conv.padding {
        // burn's `Same` pads a stride-1 layer by half the kernel (odd kernels: evenly).
        PaddingConfig2d::Same if conv.stride == [1, 1] && kh % 2 == 1 && kw % 2 == 1 => {
            [kh / 2, kw / 2]
        }
        PaddingConfig2d::Same => return None,
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        PaddingConfig2d::Explicit(..) => return None,
    };
    let [_, _, height, width] = input.dims();
    if height + 2 * padding[0] < kh || width + 2 * padding[1] < kw {
        return None;
    }
    if conv.stride == [1, 1] && kh == kw && kh % 2 == 1 && padding == [kh / 2; 2] {
        return Some(ConvKernel::Same);
    }
    Some(ConvKernel::Strided(strided_conv::Stepping {
        stride: conv.stride,
        padding,
    }))
}

fn is_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// Batch norm in f32 whatever the input's precision: its statistics need f32's range, and its
/// running mean and variance are shared f32 state (as PyTorch's autocast keeps them).
pub fn batch_norm_in_f32(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if x.dtype() == DType::BF16 {
        batch_norm(norm, x.cast(burn::tensor::FloatDType::F32)).cast(burn::tensor::FloatDType::BF16)
    } else {
        batch_norm(norm, x)
    }
}

/// `norm.forward(input)`: in training on flex (f32), through kiln's fused batch norm, updating the
/// running statistics as burn's does; burn's own everywhere else.
pub fn batch_norm(norm: &BatchNorm, input: Tensor<4>) -> Tensor<4> {
    if !runs_on_kiln_batch_norm(norm, &input) {
        return norm.forward(input);
    }
    let (output, mean, variance) = <Dispatch as KilnCpuOps>::batch_norm_train(
        input.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    let (mean, variance) = (
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(variance),
    );
    let device = mean.device();
    let momentum = norm.momentum;
    let blend = |running: Tensor<1>, batch: Tensor<1>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - momentum)
            .add(batch.detach().mul_scalar(momentum))
            .detach()
    };
    norm.running_mean
        .update(blend(norm.running_mean.value_sync(), mean));
    norm.running_var
        .update(blend(norm.running_var.value_sync(), variance));
    Tensor::from_dispatch(output)
}

/// Whether [`batch_norm`] runs kiln's kernel for this layer and input: training (an autodiff
/// device and the layer not frozen), on flex, in f32.
pub fn runs_on_kiln_batch_norm(norm: &BatchNorm, input: &Tensor<4>) -> bool {
    let device = input.device();
    CpuKernels::current() == CpuKernels::Kiln
        && device.is_autodiff()
        && norm.training.is_enabled()
        && is_flex(&device)
        && input.dtype() == DType::F32
        && norm.gamma.val().dtype() == DType::F32
}

/// `pool.forward(input)`, through kiln's 2×2 kernel on flex (f32, 2×2 window, stride 2, no
/// padding or dilation, floor mode) and burn's everywhere else.
pub fn max_pool2d(pool: &MaxPool2d, input: Tensor<4>) -> Tensor<4> {
    if runs_on_kiln_pool(pool, &input) {
        Tensor::from_dispatch(<Dispatch as KilnCpuOps>::max_pool2x2(input.into_dispatch()))
    } else {
        pool.forward(input)
    }
}

/// Whether [`max_pool2d`] runs kiln's kernel for this layer and input.
pub fn runs_on_kiln_pool(pool: &MaxPool2d, input: &Tensor<4>) -> bool {
    CpuKernels::current() == CpuKernels::Kiln
        && is_flex(&input.device())
        && input.dtype() == DType::F32
        && pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid)
}
