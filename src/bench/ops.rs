//! `kiln bench --ops`: each operation of the workloads' models timed on its own, on the shapes
//! it has there (convolution forward and its input and weight gradients, ReLU, max pooling,
//! batch norm in training, linear layers, cross-entropy, the Adam step), so that a gap to
//! PyTorch can be traced to the operation that makes it. `bench/torch_reference.py --ops` times
//! the same list the same way (warm-up, then the median of `repeat` runs, each ended by a
//! device sync); `bench/compare.sh` prints the two side by side.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::module::{batch_norm_train, conv2d, linear, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{Workload, experiment_for, median};
use crate::experiment::BackendChoice;
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
    let (device, _) = choose_backend(backend).map_err(|e| e.to_string())?;
    let grad_device = device.clone().autodiff();
    grad_device.seed(7);
    let b = workload.batch_size;
    let mut timings = Vec::new();
    let mut record = |op: String, dims: &[usize], milliseconds: f64| {
        timings.push(OpTiming {
            workload: workload.name.clone(),
            op,
            shape: shape(dims),
            milliseconds,
        });
    };
    let normal = Distribution::Normal(0.0, 1.0);

    let (mut channels, mut side) = (workload.channels, workload.side);
    for (i, &out) in workload.conv_channels.iter().enumerate() {
        let n = i + 1;
        let x_dims = [b, channels, side, side];
        let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let x = Tensor::<4>::random(x_dims, normal, &device);
        let w = Tensor::<4>::random([out, channels, 3, 3], normal, &device);
        let bias = Tensor::<1>::random([out], normal, &device);
        let fwd = time(&device, warmup, repeat, || {
            conv2d(x.clone(), w.clone(), Some(bias.clone()), options())
        });
        record(format!("conv{n} fwd"), &x_dims, fwd);
        // Only one of input and weight tracked: the backward computes that gradient alone.
        let xg = Tensor::<4>::random(x_dims, normal, &grad_device);
        let wg = Tensor::<4>::random([out, channels, 3, 3], normal, &grad_device);
        let bg = Tensor::<1>::random([out], normal, &grad_device);
        let input_grad = time(&device, warmup, repeat, || {
            let x = xg.clone().require_grad();
            conv2d(x, wg.clone(), Some(bg.clone()), options()).backward()
        });
        record(format!("conv{n} fwd+bwd-input"), &x_dims, input_grad);
        let weight_grad = time(&device, warmup, repeat, || {
            let w = wg.clone().require_grad();
            let bias = bg.clone().require_grad();
            conv2d(xg.clone(), w, Some(bias), options()).backward()
        });
        record(format!("conv{n} fwd+bwd-weight"), &x_dims, weight_grad);

        let y_dims = [b, out, side, side];
        if workload.batch_norm {
            let y = Tensor::<4>::random(y_dims, normal, &grad_device);
            let gamma = Tensor::<1>::ones([out], &grad_device);
            let beta = Tensor::<1>::zeros([out], &grad_device);
            let fwd = time(&device, warmup, repeat, || {
                batch_norm_train(y.clone(), gamma.clone(), beta.clone(), 1e-5).output
            });
            record(format!("bn{n} fwd"), &y_dims, fwd);
            let both = time(&device, warmup, repeat, || {
                let out = batch_norm_train(
                    y.clone().require_grad(),
                    gamma.clone().require_grad(),
                    beta.clone().require_grad(),
                    1e-5,
                );
                out.output.backward()
            });
            record(format!("bn{n} fwd+bwd"), &y_dims, both);
        }
        let y = Tensor::<4>::random(y_dims, normal, &grad_device);
        let fwd = time(&device, warmup, repeat, || relu(y.clone()));
        record(format!("relu{n} fwd"), &y_dims, fwd);
        let both = time(&device, warmup, repeat, || {
            relu(y.clone().require_grad()).backward()
        });
        record(format!("relu{n} fwd+bwd"), &y_dims, both);
        let pool = || MaxPoolOptions::new([2, 2]);
        let fwd = time(&device, warmup, repeat, || max_pool2d(y.clone(), pool()));
        record(format!("pool{n} fwd"), &y_dims, fwd);
        let both = time(&device, warmup, repeat, || {
            max_pool2d(y.clone().require_grad(), pool()).backward()
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
        record(format!("linear{n} fwd"), &[b, features], fwd);
        let both = time(&device, warmup, repeat, || {
            linear(
                x.clone().require_grad(),
                w.clone().require_grad(),
                Some(bias.clone().require_grad()),
            )
            .backward()
        });
        record(format!("linear{n} fwd+bwd"), &[b, features], both);
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
    record("cross-entropy fwd+bwd".into(), &[b, workload.classes], both);

    // The optimiser step alone: the gradients come from a pass outside the clock.
    let experiment = experiment_for(workload, backend, 1);
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
    record("adam step".into(), &[parameters], median(samples));
    Ok(timings)
}
