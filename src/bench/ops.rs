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
    let mut bench = OpBench {
        workload,
        device,
        grad_device,
        warmup,
        repeat,
        timings: Vec::new(),
    };
    let (mut channels, mut side) = (workload.channels, workload.side);
    for (i, &out) in workload.conv_channels.iter().enumerate() {
        bench.conv_block(i + 1, [channels, out], side);
        (channels, side) = (out, side / 2);
    }
    bench.dense_layers(channels * side * side);
    bench.cross_entropy();
    bench.adam_step(backend);
    Ok(bench.timings)
}

/// Inputs are drawn from it.
const NORMAL: Distribution = Distribution::Normal(0.0, 1.0);

/// Where and how the operations are timed, and the timings so far.
struct OpBench<'a> {
    workload: &'a Workload,
    device: Device,
    /// The device with autodiff, for the backward passes.
    grad_device: Device,
    warmup: usize,
    repeat: usize,
    timings: Vec<OpTiming>,
}

impl OpBench<'_> {
    fn record(&mut self, op: String, dims: &[usize], times: Timing) {
        let Timing { kiln, burn } = times;
        self.timings.push(OpTiming {
            workload: self.workload.name.clone(),
            op,
            shape: shape(dims),
            milliseconds: kiln,
            burn_milliseconds: burn,
        });
    }

    fn time<T>(&self, run: impl FnMut() -> T) -> Timing {
        time(&self.device, self.warmup, self.repeat, run).into()
    }

    /// [`time_both`] with this bench's device, warm-up and repetitions.
    fn time_both<T>(&self, replaced: bool, run: impl FnMut() -> T) -> Timing {
        time_both(&self.device, replaced, self.warmup, self.repeat, run)
    }

    /// Conv block `n` (`[input, output]` channels on `side`×`side` images): the convolution
    /// forward and each of its gradients alone, batch norm, ReLU and max pooling.
    fn conv_block(&mut self, n: usize, [channels, out]: [usize; 2], side: usize) {
        let b = self.workload.batch_size;
        let x_dims = [b, channels, side, side];
        let conv = Conv2dConfig::new([channels, out], [3, 3]).with_padding(PaddingConfig2d::Same);
        let plain_conv = conv.init(&self.device);
        let x = Tensor::<4>::random(x_dims, NORMAL, &self.device);
        let replaced = flex_ops::runs_on_kiln_conv(&plain_conv, &x);
        let fwd = self.time_both(replaced, || flex_ops::conv2d(&plain_conv, x.clone()));
        self.record(format!("conv{n} fwd"), &x_dims, fwd);
        // Only one of input and weight tracked: the backward computes that gradient alone.
        let weight_tracked = conv.init(&self.grad_device);
        let input_tracked = conv.init(&self.grad_device).no_grad();
        let xg = Tensor::<4>::random(x_dims, NORMAL, &self.grad_device);
        let input_grad = self.time_both(replaced, || {
            flex_ops::conv2d(&input_tracked, xg.clone().require_grad()).backward()
        });
        self.record(format!("conv{n} fwd+bwd-input"), &x_dims, input_grad);
        let weight_grad = self.time_both(replaced, || {
            flex_ops::conv2d(&weight_tracked, xg.clone()).backward()
        });
        self.record(format!("conv{n} fwd+bwd-weight"), &x_dims, weight_grad);

        let y_dims = [b, out, side, side];
        if self.workload.batch_norm {
            let y = Tensor::<4>::random(y_dims, NORMAL, &self.grad_device);
            let norm = BatchNormConfig::new(out).init(&self.grad_device);
            let replaced = flex_ops::runs_on_kiln_batch_norm(&norm, &y);
            let fwd = self.time_both(replaced, || flex_ops::batch_norm(&norm, y.clone()));
            self.record(format!("bn{n} fwd"), &y_dims, fwd);
            let both = self.time_both(replaced, || {
                flex_ops::batch_norm(&norm, y.clone().require_grad()).backward()
            });
            self.record(format!("bn{n} fwd+bwd"), &y_dims, both);
        }
        let y = Tensor::<4>::random(y_dims, NORMAL, &self.grad_device);
        let fwd = self.time(|| relu(y.clone()));
        self.record(format!("relu{n} fwd"), &y_dims, fwd);
        let both = self.time(|| relu(y.clone().require_grad()).backward());
        self.record(format!("relu{n} fwd+bwd"), &y_dims, both);
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let replaced = flex_ops::runs_on_kiln_pool(&pool, &y);
        let fwd = self.time_both(replaced, || flex_ops::max_pool2d(&pool, y.clone()));
        self.record(format!("pool{n} fwd"), &y_dims, fwd);
        let both = self.time_both(replaced, || {
            flex_ops::max_pool2d(&pool, y.clone().require_grad()).backward()
        });
        self.record(format!("pool{n} fwd+bwd"), &y_dims, both);
    }

    /// The dense layers and the output layer, from `features` flattened inputs.
    fn dense_layers(&mut self, mut features: usize) {
        let b = self.workload.batch_size;
        let layers: Vec<usize> = self
            .workload
            .dense
            .iter()
            .copied()
            .chain(std::iter::once(self.workload.classes))
            .collect();
        for (i, units) in layers.into_iter().enumerate() {
            let n = i + 1;
            let x = Tensor::<2>::random([b, features], NORMAL, &self.grad_device);
            let w = Tensor::<2>::random([features, units], NORMAL, &self.grad_device);
            let bias = Tensor::<1>::random([units], NORMAL, &self.grad_device);
            let fwd = self.time(|| linear(x.clone(), w.clone(), Some(bias.clone())));
            self.record(format!("linear{n} fwd"), &[b, features], fwd);
            let both = self.time(|| {
                linear(
                    x.clone().require_grad(),
                    w.clone().require_grad(),
                    Some(bias.clone().require_grad()),
                )
                .backward()
            });
            self.record(format!("linear{n} fwd+bwd"), &[b, features], both);
            features = units;
        }
    }

    /// The loss's forward and backward on random logits.
    fn cross_entropy(&mut self) {
        let (b, classes) = (self.workload.batch_size, self.workload.classes);
        let logits = Tensor::<2>::random([b, classes], NORMAL, &self.grad_device);
        let targets = self.targets();
        let loss_fn = CrossEntropyLoss::new(None, &self.grad_device);
        let both = self.time(|| {
            loss_fn
                .forward(logits.clone().require_grad(), targets.clone())
                .backward()
        });
        self.record("cross-entropy fwd+bwd".into(), &[b, classes], both);
    }

    /// The optimiser step alone: the gradients come from a pass outside the clock.
    fn adam_step(&mut self, backend: BackendChoice) {
        let w = self.workload;
        let experiment = experiment_for(w, backend, Precision::F32, 1);
        let shape = ModelShape {
            channels: w.channels,
            height: w.side,
            width: w.side,
            classes: w.classes,
        };
        let mut model = Some(Classifier::new(&experiment.model, shape, &self.grad_device));
        let mut optimizer = AdamConfig::new().init();
        let loss_fn = CrossEntropyLoss::new(None, &self.grad_device);
        let targets = self.targets();
        let images = [w.batch_size, w.channels, w.side, w.side];
        let mut samples = Vec::new();
        for run in 0..self.warmup + self.repeat.max(1) {
            let current = model.take().expect("the model is put back after each step");
            let input = Tensor::<4>::random(images, NORMAL, &self.grad_device);
            let loss = loss_fn.forward(current.forward(input), targets.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &current);
            let _ = self.device.sync();
            let started = Instant::now();
            let stepped = optimizer.step(1e-3, current, grads);
            let _ = self.device.sync();
            if run >= self.warmup {
                samples.push(started.elapsed().as_secs_f64() * 1e3);
            }
            model = Some(stepped);
        }
        let parameters = model.as_ref().map_or(0, Module::num_params);
        self.record("adam step".into(), &[parameters], median(samples).into());
    }

    /// Labels cycling through the classes, one a batch image.
    fn targets(&self) -> Tensor<1, Int> {
        let (b, classes) = (self.workload.batch_size, self.workload.classes as i64);
        let labels: Vec<i64> = (0..b as i64).map(|i| i % classes).collect();
        Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &self.grad_device)
    }
}
