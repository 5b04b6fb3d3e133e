//! `kiln lr-find`: a short training run from fresh weights whose learning rate grows
//! exponentially each step, measuring the loss at every rate. Nothing is written: no run
//! directory, no checkpoint. The arithmetic (rates, smoothing, the suggestion) is
//! `kiln_core::lr_find`'s.

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};

use super::error::TrainError;
use super::eval::read_floats;
use super::setup::RunData;
use super::{loss, optim};
use crate::data::Loader;
use crate::experiment::Experiment;
use crate::model::Classifier;
use crate::protocol::BackendSummary;
use kiln_core::lr_find::{Sweep, SweepPlan};

/// What a sweep measured, and where.
pub struct LrFind {
    pub sweep: Sweep,
    pub backend: BackendSummary,
    /// Training images the batches drew from.
    pub train_images: usize,
}

/// Trains `experiment`'s model from fresh weights for `plan.steps` batches (fewer when the loss
/// blows up), each at the next rate of the sweep.
pub fn lr_find(experiment: &Experiment, plan: SweepPlan) -> Result<LrFind, TrainError> {
    let (device, backend) =
        super::backend::choose(experiment.train.backend, experiment.train.precision)?;
    let data = RunData::load(experiment, None, &device)?;
    let train_device = device.clone().autodiff();
    train_device.seed(experiment.train.seed);
    // Fine-tuning sweeps from the pretrained weights the run would start from.
    let (fresh, _) = crate::pretrained::for_config(
        Classifier::new(&experiment.model, data.shape, &train_device),
        &experiment.model,
        data.shape.classes,
    )?;
    let mut model = Some(fresh);
    let mut optimizer = optim::build(&experiment.train);
    let loss_fn = loss::training_loss(
        &experiment.train,
        data.class_weights.as_deref(),
        &train_device,
    );
    let batch_size = experiment.train.batch_size;
    let batches_per_epoch = data.split.train.len().div_ceil(batch_size).max(1);
    let loader = Loader::spawn(
        data.dataset.clone(),
        data.loader_plan(experiment, 1, 0, plan.steps.div_ceil(batches_per_epoch)),
    )
    .map_err(TrainError::LoaderStart)?;
    let (c, h, w) = (data.shape.channels, data.shape.height, data.shape.width);
    let mut sweep = Sweep::default();
    for step in 0..plan.steps {
        let batch = loader.batches.recv().map_err(|_| TrainError::LoaderEnded)?;
        let n = batch.len();
        let images =
            Tensor::<4>::from_data(TensorData::new(batch.images, [n, c, h, w]), &train_device);
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [n]), &train_device);
        let rate = plan.rate(step);
        let current = model.take().expect("the model is back after each step");
        let logits = current.forward_in(images, experiment.train.precision);
        let loss = loss_fn.forward(logits, targets);
        // A read each step: the sweep must see each loss before choosing to go on.
        let value = read_floats(loss.clone().detach())?[0] as f64;
        if !sweep.record(rate, value) {
            break;
        }
        let gradients = GradientsParams::from_grads(loss.backward(), &current);
        model = Some(optimizer.step(rate, current, gradients));
    }
    Ok(LrFind {
        sweep,
        backend,
        train_images: data.split.train.len(),
    })
}
