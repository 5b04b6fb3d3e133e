//! `kiln bench --ops`: each operation of the workloads' models timed on its own, on the shapes
//! it has there (convolution forward and its input and weight gradients, ReLU, max pooling,
//! batch norm in training, linear layers, cross-entropy, the Adam step), so that a gap to
//! PyTorch can be traced to the operation that makes it. Where kiln runs its own CPU kernel
//! (`flex_ops`), burn's is timed beside it in the same run. `bench/torch_reference.py --ops` times
//! the same list the same way (warm-up, then the median of `repeat` runs, each ended by a
//! device sync); `bench/compare.sh` prints the two side by side.

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::Conv2dConfig;
use burn::nn::loss::CrossEntropyLoss;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::module::linear;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Workload, experiment_for, median};
use crate::experiment::{BackendChoice, Precision};
use crate::flex_ops::{self, CpuKernels};
use crate::model::{Classifier, ModelShape};
use crate::train::choose_backend;

/// One operation's time on one workload's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpTiming {
    pub workload: String,
    /// e.g. `conv1 fwd`, `conv1 bwd-input`, `pool2 fwd+bwd`, `adam step`.
    pub op: String,
    /// The input's shape, e.g. `32x16x14x14`.
    pub shape: String,
    /// Median milliseconds per run.
    pub milliseconds: f64,
    /// The same operation through burn's own kernel, timed in the same run, where kiln runs its
    /// own instead (the convolutions on flex); `None` where kiln uses burn's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_milliseconds: Option<f64>,
}

/// An operation's median time with the kernels kiln uses, and with burn's where they differ.
struct Timing {
    kiln: f64,
    burn: Option<f64>,
}

impl From<f64> for Timing {
    fn from(kiln: f64) -> Self {
        Self { kiln, burn: None }
    }
}

/// [`time`] with kiln's CPU kernels, then, where they replace burn's (`replaced`), with burn's,
/// the same warm-up and repetitions each.
fn time_both<T>(
    device: &Device,
    replaced: bool,
    warmup: usize,
    repeat: usize,
    mut run: impl FnMut() -> T,
) -> Timing {
    let chosen = CpuKernels::current();
    CpuKernels::Kiln.select();
    let kiln = time(device, warmup, repeat, &mut run);
    let burn = replaced.then(|| {
        CpuKernels::Burn.select();
        time(device, warmup, repeat, &mut run)
    });
    chosen.select();
    Timing { kiln, burn }
}

fn shape(dims: &[usize]) -> String {
    dims.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// Times `run` (its result dropped after a device sync): `warmup` untimed runs, then the median
/// of `repeat` timed ones, in milliseconds.
fn time<T>(device: &Device, warmup: usize, repeat: usize, mut run: impl FnMut() -> T) -> f64 {
    for _ in 0..warmup {
        drop(run());
        let _ = device.sync();
    }
    let samples = (0..repeat.max(1))
        .map(|_| {
            let started = Instant::now();
            let out = run();
            let _ = device.sync();
            let seconds = started.elapsed().as_secs_f64();
            drop(out);
            seconds * 1e3
        })
        .collect();
    median(samples)
}

/// Every operation of `workload`'s model, forward and backward, in model order.
pub fn measure_ops(
    workload: &Workload,
    backend: BackendChoice,
    warmup: usize,
    repeat: usize,
) -> Result<Vec<OpTiming>, String> {
    let (device, _) = choose_backend(backend, Precision::F32).map_err(|e| e.to_string())?;
    let grad_device = device.clone().autodiff();
    grad_device.seed(7);
    let b = workload.batch_size;
    let mut timings = Vec::new();
    let mut record = |op: String, dims: &[usize], times: Timing| {
        let Timing { kiln, burn } = times;
        timings.push(OpTiming {
            workload: workload.name.clone(),
            op,
            shape: shape(dims),
            milliseconds: kiln,
            burn_milliseconds: burn,
        });
    };
    let normal = Distribution::Normal(0.0, 1.0);

    let (mut channels, mut side) = (workload.channels, workload.side);
    for (i, &out) in workload.conv_channels.iter().enumerate() {
        let n = i + 1;
        let x_dims = [b, channels, side, side];
        let conv = Conv2dConfig::new([channels, out], [3, 3]).with_padding(PaddingConfig2d::Same);
        let plain_conv = conv.init(&device);
        let x = Tensor::<4>::random(x_dims, normal, &device);
        let replaced = flex_ops::runs_on_kiln_conv(&plain_conv, &x);
        let conv_fwd = time_both(&device, replaced, warmup, repeat, || {
            flex_ops::conv2d(&plain_conv, x.clone())
        });
        record(format!("conv{n} fwd"), &x_dims, conv_fwd);
        // Only one of input and weight tracked: the backward computes that gradient alone.
        let weight_tracked = conv.init(&grad_device);
        let input_tracked = conv.init(&grad_device).no_grad();
        let xg = Tensor::<4>::random(x_dims, normal, &grad_device);
        let input_grad = time_both(&device, replaced, warmup, repeat, || {
            let x = xg.clone().require_grad();
            flex_ops::conv2d(&input_tracked, x).backward()
        });
        record(format!("conv{n} fwd+bwd-input"), &x_dims, input_grad);
        let weight_grad = time_both(&device, replaced, warmup, repeat, || {
            flex_ops::conv2d(&weight_tracked, xg.clone()).backward()
        });
        record(format!("conv{n} fwd+bwd-weight"), &x_dims, weight_grad);

        let y_dims = [b, out, side, side];
        if workload.batch_norm {
            let y = Tensor::<4>::random(y_dims, normal, &grad_device);
            let norm = BatchNormConfig::new(out).init(&grad_device);
            let replaced = flex_ops::runs_on_kiln_batch_norm(&norm, &y);
            let fwd = time_both(&device, replaced, warmup, repeat, || {
                flex_ops::batch_norm(&norm, y.clone())
            });
            record(format!("bn{n} fwd"), &y_dims, fwd);
            let both = time_both(&device, replaced, warmup, repeat, || {
                flex_ops::batch_norm(&norm, y.clone().require_grad()).backward()
            });
            record(format!("bn{n} fwd+bwd"), &y_dims, both);
        }
        let y = Tensor::<4>::random(y_dims, normal, &grad_device);
        let fwd = time(&device, warmup, repeat, || relu(y.clone()));
        record(format!("relu{n} fwd"), &y_dims, fwd.into());
        let both = time(&device, warmup, repeat, || {
            relu(y.clone().require_grad()).backward()
        });
        record(format!("relu{n} fwd+bwd"), &y_dims, both.into());
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let replaced = flex_ops::runs_on_kiln_pool(&pool, &y);
        let fwd = time_both(&device, replaced, warmup, repeat, || {
            flex_ops::max_pool2d(&pool, y.clone())
        });
        record(format!("pool{n} fwd"), &y_dims, fwd);
        let both = time_both(&device, replaced, warmup, repeat, || {
            flex_ops::max_pool2d(&pool, y.clone().require_grad()).backward()
        });
        record(format!("pool{n} fwd+bwd"), &y_dims, both);
        (channels, side) = (out, side / 2);
    }

    let mut features = channels * side * side;
    let layers = workload
        .dense
        .iter()
        .copied()
        .chain(std::iter::once(workload.classes));
    for (i, units) in layers.enumerate() {
        let n = i + 1;
        let x = Tensor::<2>::random([b, features], normal, &grad_device);
        let w = Tensor::<2>::random([features, units], normal, &grad_device);
        let bias = Tensor::<1>::random([units], normal, &grad_device);
        let fwd = time(&device, warmup, repeat, || {
            linear(x.clone(), w.clone(), Some(bias.clone()))
        });
        record(format!("linear{n} fwd"), &[b, features], fwd.into());
        let both = time(&device, warmup, repeat, || {
            linear(
                x.clone().require_grad(),
                w.clone().require_grad(),
                Some(bias.clone().require_grad()),
            )
            .backward()
        });
        record(format!("linear{n} fwd+bwd"), &[b, features], both.into());
        features = units;
    }

    let logits = Tensor::<2>::random([b, workload.classes], normal, &grad_device);
    let labels: Vec<i64> = (0..b as i64).map(|i| i % workload.classes as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &grad_device);
    let loss_fn = CrossEntropyLoss::new(None, &grad_device);
    let both = time(&device, warmup, repeat, || {
        loss_fn
            .forward(logits.clone().require_grad(), targets.clone())
            .backward()
    });
    record(
        "cross-entropy fwd+bwd".into(),
        &[b, workload.classes],
        both.into(),
    );

    // The optimiser step alone: the gradients come from a pass outside the clock.
    let experiment = experiment_for(workload, backend, Precision::F32, 1);
    let model_shape = ModelShape {
        channels: workload.channels,
        height: workload.side,
        width: workload.side,
        classes: workload.classes,
    };
    let mut model = Some(Classifier::new(
        &experiment.model,
        model_shape,
        &grad_device,
    ));
    let mut optimizer = AdamConfig::new().init();
    let images = [b, workload.channels, workload.side, workload.side];
    let mut samples = Vec::new();
    for run in 0..warmup + repeat.max(1) {
        let current = model.take().expect("the model is put back after each step");
        let input = Tensor::<4>::random(images, normal, &grad_device);
        let loss = loss_fn.forward(current.forward(input), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &current);
        let _ = device.sync();
        let started = Instant::now();
        let stepped = optimizer.step(1e-3, current, grads);
        let _ = device.sync();
        if run >= warmup {
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
        model = Some(stepped);
    }
    let parameters = model.as_ref().map_or(0, Module::num_params);
    record("adam step".into(), &[parameters], median(samples).into());
    Ok(timings)
}
