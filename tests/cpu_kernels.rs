//! kiln's CPU kernels give what burn's own ops give: the convolution's output and all three
//! gradients on the shapes where it replaces burn's (odd kernels, images smaller than the kernel,
//! one image and many, images unfolded in bands of rows), and batch norm's output, gradients and running statistics in training.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Tensor};
use kiln::flex_ops;

struct Case {
    batch: usize,
    channels: [usize; 2],
    height: usize,
    width: usize,
    kernel: usize,
}

/// The last two are large enough that kiln unfolds each image in bands of rows (it keeps a
/// band's unfolded input under 64 Ki values): 12 channels of 5×5 taps on 30-wide rows give bands
/// of 7 rows, 7/7/7/7/5 over 33 rows, in both directions; 64 channels of 5×5 taps on 48-wide rows
/// exceed the budget in one row, so each band is a single row. The first and the fifth have
/// planes small enough that several images share one product (16 images of 3×3: groups of up to
/// 16 / threads).
const CASES: [Case; 8] = [
    Case {
        batch: 16,
        channels: [6, 5],
        height: 3,
        width: 3,
        kernel: 3,
    },
    Case {
        batch: 3,
        channels: [2, 4],
        height: 7,
        width: 5,
        kernel: 3,
    },
    Case {
        batch: 5,
        channels: [3, 8],
        height: 9,
        width: 9,
        kernel: 5,
    },
    Case {
        batch: 1,
        channels: [4, 3],
        height: 6,
        width: 4,
        kernel: 3,
    },
    Case {
        batch: 4,
        channels: [2, 2],
        height: 2,
        width: 1,
        kernel: 5,
    },
    Case {
        batch: 6,
        channels: [5, 7],
        height: 4,
        width: 3,
        kernel: 1,
    },
    Case {
        batch: 3,
        channels: [12, 12],
        height: 33,
        width: 30,
        kernel: 5,
    },
    Case {
        batch: 1,
        channels: [64, 3],
        height: 4,
        width: 48,
        kernel: 5,
    },
];

fn conv(case: &Case, device: &Device) -> Conv2d {
    let [kernel_h, kernel_w] = [case.kernel, case.kernel];
    Conv2dConfig::new(case.channels, [kernel_h, kernel_w])
        .with_padding(PaddingConfig2d::Same)
        .init(device)
}

fn input(case: &Case, device: &Device) -> Tensor<4> {
    Tensor::random(
        [case.batch, case.channels[0], case.height, case.width],
        Distribution::Normal(0.0, 1.0),
        device,
    )
}

fn assert_close(what: &str, kiln: Tensor<4>, burn: Tensor<4>) {
    assert_eq!(kiln.dims(), burn.dims(), "{what}: shape");
    let kiln = kiln.into_data().try_to_vec::<f32>().unwrap();
    let burn = burn.into_data().try_to_vec::<f32>().unwrap();
    let scale = burn.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (i, (k, b)) in kiln.iter().zip(&burn).enumerate() {
        assert!(
            (k - b).abs() <= 1e-4 * scale,
            "{what}: element {i} is {k} with kiln's kernels, {b} with burn's"
        );
    }
}

#[test]
fn kiln_convolution_forward_matches_burn() {
    let device = Device::flex();
    for case in &CASES {
        let conv = conv(case, &device);
        let x = input(case, &device);
        assert!(flex_ops::runs_on_kiln_conv(&conv, &x), "kiln's kernel runs");
        let kiln = flex_ops::conv2d(&conv, x.clone());
        assert_close("forward", kiln, conv.forward(x));
    }
}

#[test]
fn kiln_convolution_gradients_match_burn() {
    let device = Device::flex().autodiff();
    for case in &CASES {
        let conv = conv(case, &device);
        let x = input(case, &device).require_grad();
        // A random weighting of the outputs, so every output element gets its own gradient.
        let mix: Tensor<4> = Tensor::random(
            [case.batch, case.channels[1], case.height, case.width],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let kiln_grads = (flex_ops::conv2d(&conv, x.clone()) * mix.clone())
            .sum()
            .backward();
        let burn_grads = (conv.forward(x.clone()) * mix).sum().backward();

        let grad_of = |param: &Param<Tensor<4>>, grads| param.val().grad(grads).unwrap();
        assert_close(
            "input gradient",
            x.grad(&kiln_grads).unwrap(),
            x.grad(&burn_grads).unwrap(),
        );
        assert_close(
            "weight gradient",
            grad_of(&conv.weight, &kiln_grads),
            grad_of(&conv.weight, &burn_grads),
        );
        let bias = conv.bias.as_ref().unwrap().val();
        assert_close(
            "bias gradient",
            bias.grad(&kiln_grads)
                .unwrap()
                .reshape([1, 1, 1, case.channels[1]]),
            bias.grad(&burn_grads)
                .unwrap()
                .reshape([1, 1, 1, case.channels[1]]),
        );
    }
}

#[test]
fn kiln_convolution_without_gradients_runs_on_the_inner_backend() {
    // Evaluation runs the model on the device without autodiff: the extension routes to Flex.
    let device = Device::flex().autodiff();
    let case = &CASES[0];
    let conv = conv(case, &device).valid();
    let x = input(case, &Device::flex());
    let kiln = flex_ops::conv2d(&conv, x.clone());
    assert_close("forward without autodiff", kiln, conv.forward(x));
}

#[test]
fn kiln_convolution_tracks_the_weights_of_an_untracked_input() {
    // The model's first layer: the images need no gradient, the weights do.
    let device = Device::flex().autodiff();
    let case = &CASES[1];
    let conv = conv(case, &device);
    let x = input(case, &device);
    let kiln_grads = flex_ops::conv2d(&conv, x.clone()).sum().backward();
    let burn_grads = conv.forward(x).sum().backward();
    assert_close(
        "weight gradient",
        conv.weight.val().grad(&kiln_grads).unwrap(),
        conv.weight.val().grad(&burn_grads).unwrap(),
    );
}

#[test]
fn kiln_convolution_tracks_the_input_through_frozen_weights() {
    let device = Device::flex().autodiff();
    let case = &CASES[0];
    let conv = conv(case, &device).no_grad();
    let x = input(case, &device).require_grad();
    let kiln_grads = flex_ops::conv2d(&conv, x.clone()).sum().backward();
    let burn_grads = conv.forward(x.clone()).sum().backward();
    assert_close(
        "input gradient",
        x.grad(&kiln_grads).unwrap(),
        x.grad(&burn_grads).unwrap(),
    );
}

/// A ResNet's and MobileNet's stride-1 layers: no bias (batch norm follows), padding written out
/// as half the kernel on every side (1×1: none). kiln's kernel runs them, and its output and the
/// input and weight gradients are burn's.
#[test]
fn kiln_convolution_runs_the_backbones_unbiased_layers() {
    let device = Device::flex().autodiff();
    for (kernel, padding) in [
        (3, PaddingConfig2d::Explicit(1, 1, 1, 1)),
        (1, PaddingConfig2d::Valid),
        (1, PaddingConfig2d::Explicit(0, 0, 0, 0)),
    ] {
        let conv = Conv2dConfig::new([6, 5], [kernel, kernel])
            .with_padding(padding.clone())
            .with_bias(false)
            .init(&device);
        let x = Tensor::<4>::random([3, 6, 7, 9], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        assert!(flex_ops::runs_on_kiln_conv(&conv, &x), "{padding:?}");
        let mix: Tensor<4> = Tensor::random([3, 5, 7, 9], Distribution::Normal(0.0, 1.0), &device);
        let kiln_out = flex_ops::conv2d(&conv, x.clone());
        let burn_out = conv.forward(x.clone());
        assert_close("unbiased forward", kiln_out.clone(), burn_out.clone());
        let kiln_grads = (kiln_out * mix.clone()).sum().backward();
        let burn_grads = (burn_out * mix).sum().backward();
        assert_close(
            "unbiased input gradient",
            x.grad(&kiln_grads).unwrap(),
            x.grad(&burn_grads).unwrap(),
        );
        assert_close(
            "unbiased weight gradient",
            conv.weight.val().grad(&kiln_grads).unwrap(),
            conv.weight.val().grad(&burn_grads).unwrap(),
        );
    }
}

/// Strided and unpadded layers — a ResNet's 7×7 stem at stride 2, its stride-2 3×3 and 1×1
/// down-sampling layers, even and oblong kernels, odd image sizes, groups of small images —
/// run on kiln's strided kernel, and its output and all three gradients are burn's.
#[test]
fn kiln_strided_convolution_matches_burn() {
    let device = Device::flex().autodiff();
    // (batch, [in, out], [h, w], kernel, stride, padding)
    type Sizes = [usize; 2];
    let cases: [(usize, Sizes, Sizes, Sizes, Sizes, Sizes); 7] = [
        (3, [3, 8], [17, 16], [7, 7], [2, 2], [3, 3]),
        (4, [6, 10], [9, 8], [3, 3], [2, 2], [1, 1]),
        (5, [8, 12], [7, 7], [1, 1], [2, 2], [0, 0]),
        (2, [4, 5], [6, 9], [3, 3], [1, 1], [0, 0]),
        (3, [2, 3], [8, 6], [2, 2], [2, 2], [0, 0]),
        (2, [3, 4], [5, 11], [3, 1], [1, 3], [1, 0]),
        (16, [5, 6], [4, 4], [3, 3], [2, 2], [1, 1]),
    ];
    for (batch, channels, [h, w], kernel, stride, [ph, pw]) in cases {
        let mut config = Conv2dConfig::new(channels, kernel)
            .with_stride(stride)
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw));
        if batch == 16 {
            config = config.with_bias(false);
        }
        let conv = config.init(&device);
        let x = Tensor::<4>::random(
            [batch, channels[0], h, w],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        assert!(flex_ops::runs_on_kiln_conv(&conv, &x), "{config:?}");
        let kiln_out = flex_ops::conv2d(&conv, x.clone());
        let burn_out = conv.forward(x.clone());
        assert_close("strided forward", kiln_out.clone(), burn_out.clone());
        let mix: Tensor<4> =
            Tensor::random(burn_out.dims(), Distribution::Normal(0.0, 1.0), &device);
        let kiln_grads = (kiln_out * mix.clone()).sum().backward();
        let burn_grads = (burn_out * mix).sum().backward();
        assert_close(
            "strided input gradient",
            x.grad(&kiln_grads).unwrap(),
            x.grad(&burn_grads).unwrap(),
        );
        assert_close(
            "strided weight gradient",
            conv.weight.val().grad(&kiln_grads).unwrap(),
            conv.weight.val().grad(&burn_grads).unwrap(),
        );
        if let Some(bias) = &conv.bias {
            let out = channels[1];
            assert_close(
                "strided bias gradient",
                bias.val()
                    .grad(&kiln_grads)
                    .unwrap()
                    .reshape([1, 1, 1, out]),
                bias.val()
                    .grad(&burn_grads)
                    .unwrap()
                    .reshape([1, 1, 1, out]),
            );
        }
    }
}

#[test]
fn burn_keeps_the_convolutions_kiln_has_no_kernel_for() {
    let device = Device::flex();
    let x = Tensor::<4>::zeros([2, 4, 8, 8], &device);
    let even_same = Conv2dConfig::new([4, 4], [2, 2]).with_padding(PaddingConfig2d::Same);
    let lopsided = Conv2dConfig::new([4, 4], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 0, 0))
        .with_bias(false);
    let grouped = Conv2dConfig::new([4, 4], [3, 3])
        .with_padding(PaddingConfig2d::Same)
        .with_groups(4);
    let dilated = Conv2dConfig::new([4, 4], [3, 3]).with_dilation([2, 2]);
    let strided_same = Conv2dConfig::new([4, 4], [3, 3])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Same);
    for config in [even_same, lopsided, grouped, dilated, strided_same] {
        let conv = config.init(&device);
        assert!(!flex_ops::runs_on_kiln_conv(&conv, &x), "{config:?}");
        assert_eq!(
            flex_ops::conv2d(&conv, x.clone()).dims(),
            conv.forward(x.clone()).dims()
        );
    }
}

fn batch_norm_pair(channels: usize, device: &Device) -> (BatchNorm, BatchNorm) {
    let config = BatchNormConfig::new(channels);
    (config.init(device), config.init(device))
}

#[test]
fn kiln_batch_norm_matches_burn_in_training() {
    let device = Device::flex().autodiff();
    for dims in [[4, 3, 5, 6], [1, 2, 3, 3], [8, 16, 2, 1]] {
        let (kiln_norm, burn_norm) = batch_norm_pair(dims[1], &device);
        // Shifted and scaled per element, so the statistics are not those of a unit normal.
        let x = (Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device) * 3.0 + 2.0)
            .require_grad();
        assert!(flex_ops::runs_on_kiln_batch_norm(&kiln_norm, &x));
        let mix: Tensor<4> = Tensor::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let kiln_out = flex_ops::batch_norm(&kiln_norm, x.clone());
        let burn_out = burn_norm.forward(x.clone());
        assert_close("batch norm output", kiln_out.clone(), burn_out.clone());
        let kiln_grads = (kiln_out * mix.clone()).sum().backward();
        let burn_grads = (burn_out * mix).sum().backward();
        assert_close(
            "batch norm input gradient",
            x.grad(&kiln_grads).unwrap(),
            x.grad(&burn_grads).unwrap(),
        );
        let as_4d = |t: Tensor<1>| t.reshape([1, 1, 1, dims[1]]);
        for (what, kiln, burn) in [
            ("gamma gradient", &kiln_norm.gamma, &burn_norm.gamma),
            ("beta gradient", &kiln_norm.beta, &burn_norm.beta),
        ] {
            assert_close(
                what,
                as_4d(kiln.val().grad(&kiln_grads).unwrap()),
                as_4d(burn.val().grad(&burn_grads).unwrap()),
            );
        }
        assert_close(
            "running mean",
            as_4d(kiln_norm.running_mean.value_sync()),
            as_4d(burn_norm.running_mean.value_sync()),
        );
        assert_close(
            "running variance",
            as_4d(kiln_norm.running_var.value_sync()),
            as_4d(burn_norm.running_var.value_sync()),
        );
    }
}

#[test]
fn batch_norm_outside_training_stays_burns() {
    let (norm, _) = batch_norm_pair(3, &Device::flex());
    let x = Tensor::<4>::ones([2, 3, 4, 4], &Device::flex());
    assert!(!flex_ops::runs_on_kiln_batch_norm(&norm, &x));
    let frozen = batch_norm_pair(3, &Device::flex().autodiff()).0.freeze();
    let x = Tensor::<4>::ones([2, 3, 4, 4], &Device::flex().autodiff());
    assert!(!flex_ops::runs_on_kiln_batch_norm(&frozen, &x));
}

#[test]
fn kiln_max_pooling_matches_burn_forward_and_backward() {
    let device = Device::flex().autodiff();
    let pool = MaxPool2dConfig::new([2, 2]).init();
    // Odd sizes drop the last row or column, as burn's pooling without padding does.
    for dims in [[2, 3, 8, 6], [1, 2, 7, 5], [3, 1, 2, 2], [2, 2, 3, 4]] {
        let x = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device).require_grad();
        assert!(flex_ops::runs_on_kiln_pool(&pool, &x));
        let kiln = flex_ops::max_pool2d(&pool, x.clone());
        let burn = pool.forward(x.clone());
        assert_close("pool output", kiln.clone(), burn.clone());
        let mix: Tensor<4> = Tensor::random(burn.dims(), Distribution::Normal(0.0, 1.0), &device);
        let kiln_grads = (kiln * mix.clone()).sum().backward();
        let burn_grads = (burn * mix).sum().backward();
        assert_close(
            "pool input gradient",
            x.grad(&kiln_grads).unwrap(),
            x.grad(&burn_grads).unwrap(),
        );
    }
    let strided = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    let x = Tensor::<4>::zeros([1, 1, 6, 6], &device);
    assert!(!flex_ops::runs_on_kiln_pool(&strided, &x));
}
