//! Evaluation on the validation split: the split normalised once and, when it fits, kept on
//! the device between epochs; mean loss and accuracy read back in one transfer.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::error::TrainError;
use crate::data::{Dataset, Normalizer};
use crate::model::{Classifier, ModelShape};

/// Validation batches are larger than training ones: no gradients, so memory allows it.
const EVAL_BATCH: usize = 256;

/// Host-side validation data, normalised once for the whole run.
pub struct ValidationSet {
    images: Vec<f32>,
    labels: Vec<i64>,
    image_len: usize,
    /// The set already on the device, when it is small enough to keep there: every epoch's
    /// evaluation then skips the host-to-device copy (most of its time on a GPU).
    on_device: Option<Vec<EvalBatch>>,
}

/// Validation sets up to this size stay on the device between evaluations.
const KEEP_ON_DEVICE_BYTES: usize = 512 << 20;

impl ValidationSet {
    /// The `indices` images normalised, kept on `device` when they fit [`KEEP_ON_DEVICE_BYTES`].
    pub fn new(
        dataset: &Dataset,
        indices: &[usize],
        normalizer: &Normalizer,
        device: &Device,
        shape: ModelShape,
    ) -> Self {
        let images = normalizer.images(dataset, indices);
        let labels: Vec<i64> = indices.iter().map(|&i| dataset.labels[i] as i64).collect();
        let image_len = dataset.image_len();
        if images.len() * std::mem::size_of::<f32>() > KEEP_ON_DEVICE_BYTES {
            return Self {
                images,
                labels,
                image_len,
                on_device: None,
            };
        }
        let on_device = upload_batches(device, &images, &labels, image_len, shape);
        // The device copy is the one used: the floats are not kept twice.
        Self {
            images: Vec::new(),
            labels,
            image_len,
            on_device: Some(on_device),
        }
    }

    pub fn evaluate(
        &self,
        model: &Classifier,
        device: &Device,
        shape: ModelShape,
    ) -> Result<(f64, f64), TrainError> {
        match &self.on_device {
            Some(batches) => evaluate_batches(model, device, batches, self.labels.len()),
            None => evaluate(
                model,
                device,
                &self.images,
                &self.labels,
                self.image_len,
                shape,
            ),
        }
    }
}

/// A small tensor's values on the host (one wait for the device).
pub fn read_floats(tensor: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::DeviceRead(format!("{e:?}")))
}

/// One validation batch on the device: images and labels.
pub type EvalBatch = (Tensor<4>, Tensor<1, Int>);

/// Mean loss and accuracy of `model` over a whole split (weighted by batch size), copying the
/// split to the device batch by batch.
pub fn evaluate(
    model: &Classifier,
    device: &Device,
    images: &[f32],
    labels: &[i64],
    image_len: usize,
    shape: ModelShape,
) -> Result<(f64, f64), TrainError> {
    let batches = upload_batches(device, images, labels, image_len, shape);
    evaluate_batches(model, device, &batches, labels.len())
}

/// A split as device batches of [`EVAL_BATCH`] images.
pub fn upload_batches(
    device: &Device,
    images: &[f32],
    labels: &[i64],
    image_len: usize,
    shape: ModelShape,
) -> Vec<EvalBatch> {
    labels
        .chunks(EVAL_BATCH)
        .enumerate()
        .map(|(start, chunk)| {
            let n = chunk.len();
            let offset = start * EVAL_BATCH * image_len;
            let batch = images[offset..offset + n * image_len].to_vec();
            let input = Tensor::<4>::from_data(
                TensorData::new(batch, [n, shape.channels, shape.height, shape.width]),
                device,
            );
            let targets = Tensor::<1, Int>::from_data(TensorData::new(chunk.to_vec(), [n]), device);
            (input, targets)
        })
        .collect()
}

/// Mean loss and accuracy of `model` over batches already on the device (`count` images).
pub fn evaluate_batches(
    model: &Classifier,
    device: &Device,
    batches: &[EvalBatch],
    count: usize,
) -> Result<(f64, f64), TrainError> {
    let model = model.valid();
    let loss_fn = CrossEntropyLoss::new(None, device);
    let mut totals = Tensor::<1>::zeros([2], device);
    for (input, targets) in batches {
        let n = targets.dims()[0];
        let logits = model.forward(input.clone());
        let loss = loss_fn.forward(logits.clone(), targets.clone()) * n as f32;
        let correct = logits
            .argmax(1)
            .reshape([n])
            .equal(targets.clone())
            .int()
            .sum()
            .float();
        totals = totals + Tensor::cat(vec![loss, correct], 0);
    }
    let values = read_floats(totals)?;
    let n = count.max(1) as f64;
    Ok((values[0] as f64 / n, values[1] as f64 / n))
}
