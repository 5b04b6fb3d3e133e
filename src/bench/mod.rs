//! The speed harness behind `kiln bench`: fixed workloads on fixed synthetic data, each trained
//! two ways in the same process — kiln's real training thread (event log, channel, screen state
//! updates) and a bare burn loop with the same model, data and optimiser — so the cost of kiln's
//! monitoring is a ratio measured side by side, never a number compared across runs.
//!
//! [`probes`] times kiln's own parts apart (monitoring, a frame, the loader); [`report`] runs
//! the whole bench and prints its table.

pub mod inference;
pub mod ops;
mod probes;
pub mod report;

pub use probes::{
    LoaderRates, frame_milliseconds, loader_images_per_second, monitoring_seconds_per_batch,
    synthetic_run,
};

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Normalizer};
use crate::experiment::{Backbone, BackendChoice, Experiment, Precision};
use crate::model::{Classifier, ModelShape};
use crate::monitor::RunView;
use crate::protocol::EventKind;
use crate::train::readback::PendingRead;
use crate::train::{self, TrainOptions, choose_backend};

/// A fixed training job: input shape, model and batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub name: String,
    pub channels: usize,
    pub side: usize,
    pub classes: usize,
    pub conv_channels: Vec<usize>,
    pub dense: Vec<usize>,
    pub batch_norm: bool,
    pub batch_size: usize,
    /// Images in one epoch of the real data set this workload stands for.
    pub epoch_images: usize,
    /// A torchvision backbone instead of the CNN the conv and dense sizes describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<Backbone>,
}

/// The workloads, in the order they are reported.
pub fn workloads() -> Vec<Workload> {
    let w =
        |name: &str, channels, side, classes, conv: &[usize], dense: &[usize], bn, batch, epoch| {
            Workload {
                name: name.into(),
                channels,
                side,
                classes,
                conv_channels: conv.to_vec(),
                dense: dense.to_vec(),
                batch_norm: bn,
                batch_size: batch,
                epoch_images: epoch,
                backbone: None,
            }
        };
    vec![
        w("digits", 1, 8, 10, &[16, 32], &[64], false, 32, 1438),
        w("mnist", 1, 28, 10, &[16, 32], &[128], false, 32, 1000),
        w("small64", 3, 64, 10, &[16, 32, 64], &[128], false, 32, 1000),
        w(
            "small64-bn",
            3,
            64,
            10,
            &[16, 32, 64],
            &[128],
            true,
            32,
            1000,
        ),
        w("case-study", 3, 224, 2, &[16, 32], &[], false, 128, 1485),
        // Fine-tuning's network: torchvision's ResNet-18 on 64x64 photos (PyTorch's side builds
        // torchvision's own).
        Workload {
            backbone: Some(Backbone::Resnet18),
            ..w("resnet18", 3, 64, 10, &[], &[], true, 32, 1000)
        },
    ]
}

/// One workload's figures; the same fields as `bench/torch_reference.py` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub workload: String,
    pub framework: String,
    pub backend: String,
    pub device: String,
    /// `f32` or `bf16`, as `bench/torch_reference.py` names its modes' number formats.
    #[serde(default)]
    pub precision: String,
    pub train_images_per_second: f64,
    /// kiln's own validation pass at the end of the epoch (the trainer's code path).
    pub eval_images_per_second: f64,
    pub seconds_per_epoch: f64,
    /// Peak resident memory of the process so far (MB), from /proc; 0 where unavailable.
    pub peak_memory_mb: f64,
    /// The bare burn loop on the same model and data, measured in the same run.
    pub bare_train_images_per_second: f64,
    /// The bare loop's evaluation: the same forward passes on 4 batches already on the device.
    #[serde(default)]
    pub bare_eval_images_per_second: f64,
    /// kiln ÷ bare: 1.0 means monitoring costs nothing.
    pub ratio_vs_bare: f64,
    pub batch_size: usize,
    /// Repetitions of each loop; the figures are their medians.
    #[serde(default)]
    pub repeat: usize,
    /// Share of kiln's training time spent waiting for its loader's next batch (0–1).
    #[serde(default)]
    pub loader_wait: f64,
    /// GPU memory in use during kiln's loop, the most sampled (NVML, the whole device); absent
    /// without an NVIDIA driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_memory_mb: Option<f64>,
}

/// Random images (seeded) standing in for a data set of the workload's shape.
pub fn synthetic_dataset(workload: &Workload, images: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = workload.channels * workload.side * workload.side;
    let mut pixels = vec![0u8; images * len];
    rng.fill(pixels.as_mut_slice());
    Dataset {
        name: format!("synthetic-{}", workload.name),
        classes: (0..workload.classes).map(|c| c.to_string()).collect(),
        channels: workload.channels,
        height: workload.side,
        width: workload.side,
        pixels,
        labels: (0..images).map(|i| i % workload.classes).collect(),
        skipped: Vec::new(),
    }
}

pub(crate) fn experiment_for(
    workload: &Workload,
    backend: BackendChoice,
    precision: Precision,
    batches: usize,
) -> Experiment {
    let mut e = Experiment {
        name: format!("bench-{}", workload.name),
        ..Experiment::default()
    };
    e.data.image_size = Some(workload.side);
    e.data.channels = Some(workload.channels);
    e.data.validation_fraction = 0.1;
    e.data.train_images = Some(batches * workload.batch_size);
    e.model.conv_channels = workload.conv_channels.clone();
    e.model.dense = workload.dense.clone();
    e.model.batch_norm = workload.batch_norm && workload.backbone.is_none();
    e.model.backbone = workload.backbone;
    e.train.epochs = 1;
    e.train.batch_size = workload.batch_size;
    e.train.backend = backend;
    e.train.precision = precision;
    e.train.seed = 7;
    e
}

/// Peak resident set size of this process in MB (Linux), else 0.
pub fn peak_memory_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs one workload both ways, `repeat` times alternating (the medians are reported, so one
/// disturbed run does not decide the ratio); `warmup` steps are not timed, `steps` are.
pub fn measure(
    workload: &Workload,
    backend: BackendChoice,
    precision: Precision,
    warmup: usize,
    steps: usize,
    repeat: usize,
    runs_dir: &Path,
) -> Result<Measurement, String> {
    let batches = warmup + steps;
    // Enough images that the split leaves `batches` full training batches after validation.
    let images = (batches * workload.batch_size * 10).div_ceil(9) + workload.classes * 2;
    let dataset = Arc::new(synthetic_dataset(workload, images, 11));
    let (mut bare_train, mut bare_eval) = (Vec::new(), Vec::new());
    let (mut kiln_train, mut kiln_eval) = (Vec::new(), Vec::new());
    let (mut loader_wait, mut device_memory) = (Vec::new(), None::<f64>);
    let mut names = (String::new(), String::new());
    for repetition in 0..repeat.max(1) {
        // Whichever loop runs first pays for cold caches (autotune, compiled kernels, the
        // allocator's pool): the order alternates so neither is always favoured.
        let kiln_first = repetition % 2 == 1;
        let mut run_kiln = || -> Result<(), String> {
            let kiln = kiln_loop(
                workload,
                &dataset,
                (backend, precision),
                warmup,
                steps,
                runs_dir,
            )?;
            kiln_train.push(kiln.train);
            kiln_eval.push(kiln.eval);
            loader_wait.push(kiln.loader_wait);
            device_memory = match (device_memory, kiln.device_memory_mb) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            names = (kiln.backend, kiln.device);
            Ok(())
        };
        if kiln_first {
            run_kiln()?;
        }
        let (train, eval) = bare_loop(workload, &dataset, (backend, precision), warmup, steps)?;
        bare_train.push(train);
        bare_eval.push(eval);
        if !kiln_first {
            run_kiln()?;
        }
    }
    let (backend_name, device) = names;
    let bare = (median(bare_train), median(bare_eval));
    let kiln = median(kiln_train);
    Ok(Measurement {
        workload: workload.name.clone(),
        framework: "kiln".into(),
        backend: backend_name,
        device,
        precision: precision.name().into(),
        train_images_per_second: kiln,
        eval_images_per_second: median(kiln_eval),
        seconds_per_epoch: workload.epoch_images as f64 / kiln,
        peak_memory_mb: peak_memory_mb(),
        bare_train_images_per_second: bare.0,
        bare_eval_images_per_second: bare.1,
        ratio_vs_bare: kiln / bare.0,
        batch_size: workload.batch_size,
        repeat: repeat.max(1),
        loader_wait: median(loader_wait),
        device_memory_mb: device_memory,
    })
}

/// What one run of kiln's own loop measured.
struct KilnTiming {
    train: f64,
    /// The trainer's end-of-epoch validation pass, images per second.
    eval: f64,
    backend: String,
    device: String,
    /// Mean share of the time the trainer waited for its loader (the run's machine samples).
    loader_wait: f64,
    /// The GPU's memory in use at the run's samples, at most (NVML; the whole device).
    device_memory_mb: Option<f64>,
}

/// kiln's own training thread, timed from the consumer's side: from the batch event that ends
/// the warm-up (with no warm-up, from the run's first event) to the one `steps` batches later,
/// with every event logged, sent and applied to the screen state as a live run would. Its
/// evaluation is the trainer's own validation pass: from the epoch's last batch event to the
/// epoch event (validation set on the device, forward passes, loss and confusion counts read
/// back), over the validation images.
fn kiln_loop(
    workload: &Workload,
    dataset: &Arc<Dataset>,
    (backend, precision): (BackendChoice, Precision),
    warmup: usize,
    steps: usize,
    runs_dir: &Path,
) -> Result<KilnTiming, String> {
    let experiment = experiment_for(workload, backend, precision, warmup + steps);
    let handle = train::spawn_with_dataset(
        TrainOptions {
            experiment,
            runs_dir: runs_dir.to_path_buf(),
        },
        dataset.clone(),
    )
    .map_err(|e| e.to_string())?;
    let mut view = RunView::default();
    let (mut started, mut finished, mut evaluated) = (None, None, None);
    let mut samples = Vec::new();
    let (mut backend_name, mut validation_images) = ((String::new(), String::new()), 0);
    for event in handle.events.iter() {
        view.apply(&event);
        match &event.kind {
            EventKind::RunStarted(start) => {
                backend_name = (start.backend.name.clone(), start.backend.device.clone());
                validation_images = start.dataset.validation_images;
                if warmup == 0 {
                    started = Some(Instant::now());
                }
            }
            EventKind::Batch(b) if warmup > 0 && b.batch == warmup && started.is_none() => {
                started = Some(Instant::now());
            }
            EventKind::Batch(b) if b.batch == warmup + steps => {
                finished = Some(Instant::now());
            }
            EventKind::Epoch(_) if evaluated.is_none() => {
                evaluated = Some(Instant::now());
            }
            EventKind::Machine(sample) => samples.push(sample.clone()),
            EventKind::Failed { error } => return Err(error.clone()),
            _ => {}
        }
    }
    handle.join();
    let (Some(start), Some(end), Some(epoch_end)) = (started, finished, evaluated) else {
        return Err(format!(
            "{}: the run ended before {steps} timed steps and its evaluation",
            workload.name
        ));
    };
    let seconds = (end - start).as_secs_f64().max(1e-9);
    let eval_seconds = (epoch_end - end).as_secs_f64().max(1e-9);
    Ok(KilnTiming {
        train: (steps * workload.batch_size) as f64 / seconds,
        eval: validation_images as f64 / eval_seconds,
        backend: backend_name.0,
        device: backend_name.1,
        loader_wait: samples.iter().map(|s| s.loader_wait).sum::<f64>()
            / samples.len().max(1) as f64,
        device_memory_mb: samples
            .iter()
            .filter_map(|s| s.gpu.as_ref().map(|g| g.memory_used_mb))
            .reduce(f64::max),
    })
}

/// The same model, data and optimiser in a plain loop: no thread, channel, log or checks.
/// Returns (train images/s, eval images/s).
fn bare_loop(
    workload: &Workload,
    dataset: &Dataset,
    (backend, precision): (BackendChoice, Precision),
    warmup: usize,
    steps: usize,
) -> Result<(f64, f64), String> {
    let (device, _) = choose_backend(backend, precision).map_err(|e| e.to_string())?;
    let train_device = device.clone().autodiff();
    train_device.seed(7);
    let experiment = experiment_for(workload, backend, precision, warmup + steps);
    let shape = ModelShape {
        channels: workload.channels,
        height: workload.side,
        width: workload.side,
        classes: workload.classes,
    };
    let mut model = Classifier::new(&experiment.model, shape, &train_device);
    let mut optimizer = AdamConfig::new().init();
    let loss_fn = CrossEntropyLoss::new(None, &train_device);
    let all: Vec<usize> = (0..dataset.len()).collect();
    let normalizer = Normalizer::fit(dataset, &all);
    let b = workload.batch_size;
    let dims = [b, workload.channels, workload.side, workload.side];
    // Batches are prepared before the clock starts: the bare loop is the compute alone, the
    // strictest reference for kiln (whose loader prepares batches on a thread of its own).
    let batches: Vec<(Vec<f32>, Vec<i64>)> = (0..warmup + steps)
        .map(|step| {
            let indices: Vec<usize> = (step * b..(step + 1) * b)
                .map(|i| i % dataset.len())
                .collect();
            let labels = indices.iter().map(|&i| dataset.labels[i] as i64).collect();
            (normalizer.images(dataset, &indices), labels)
        })
        .collect();
    let last = batches.len().saturating_sub(1);
    let mut elapsed = Duration::ZERO;
    let mut in_flight: Option<PendingRead> = None;
    for (step, (images, labels)) in batches.into_iter().enumerate() {
        let started = Instant::now();
        let images = Tensor::<4>::from_data(TensorData::new(images, dims), &train_device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &train_device);
        let loss = loss_fn.forward(model.forward_in(images, precision), targets);
        // Read the loss each step, as any loop that reports it must, one step late as kiln's
        // trainer does (the same work on both sides).
        let read = PendingRead::start(loss.clone().detach());
        let gradients = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, gradients);
        if let Some(previous) = in_flight.replace(read) {
            previous.finish().map_err(|e| e.to_string())?;
        }
        if step == last
            && let Some(read) = in_flight.take()
        {
            read.finish().map_err(|e| e.to_string())?;
        }
        if step >= warmup {
            elapsed += started.elapsed();
        }
    }
    let train = (steps * b) as f64 / elapsed.as_secs_f64().max(1e-9);

    let eval_count = (4 * b).min(dataset.len());
    let eval_indices: Vec<usize> = (0..eval_count).collect();
    let images = normalizer.images(dataset, &eval_indices);
    let labels: Vec<i64> = eval_indices
        .iter()
        .map(|&i| dataset.labels[i] as i64)
        .collect();
    // On the device before the clock starts, as the trainer keeps a validation set that fits.
    let on_device =
        train::eval::upload_batches(&device, &images, &labels, dataset.image_len(), shape);
    let run_eval =
        || train::eval::evaluate_batches(&model, &device, &on_device, shape.classes, precision);
    run_eval().map_err(|e| e.to_string())?; // warm-up
    let started = Instant::now();
    run_eval().map_err(|e| e.to_string())?;
    let eval = eval_count as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok((train, eval))
}
