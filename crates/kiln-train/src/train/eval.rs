//! Evaluation on the validation split: the split normalised once and, when it fits, kept on
//! the device between epochs; mean loss and the confusion matrix read back in one transfer.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::error::TrainError;
use crate::data::{Dataset, Normalizer};
use crate::experiment::Precision;
use crate::model::{Classifier, ModelShape};
use crate::protocol::ClassCounts;

/// What one pass over a split found.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy loss.
    pub loss: f64,
    pub accuracy: f64,
    pub classes: ClassCounts,
}

/// Validation batches are larger than training ones: no gradients, so memory allows it.
const EVAL_BATCH: usize = 256;

/// On the CPU, input floats per batch of a forward pass without gradients.
const CPU_BATCH_FLOATS: usize = 1 << 19;

/// Images per forward pass without gradients (evaluation, prediction). A GPU wants large
/// batches; on the CPU a batch of large images spills the caches (64 RGB 224×224 images ran
/// about 4× slower per image than 3 on flex, measured with `kiln bench --inference`), so there
/// a batch holds about half a million input floats: all 256 for 28×28 images, 3 for 224×224 RGB.
pub fn batch_size(device: &Device, image_len: usize) -> usize {
    if *device == Device::flex() {
        (CPU_BATCH_FLOATS / image_len.max(1)).clamp(1, EVAL_BATCH)
    } else {
        EVAL_BATCH
    }
}

/// Host-side validation data, normalised once for the whole run.
pub struct ValidationSet {
    images: Vec<f32>,
    labels: Vec<i64>,
    image_len: usize,
    /// The set already on the device, when it is small enough to keep there: every epoch's
    /// evaluation then skips the host-to-device copy (most of its time on a GPU).
    on_device: Option<Vec<EvalBatch>>,
    /// The training's precision, which its evaluation computes in too.
    precision: Precision,
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
        precision: Precision,
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
                precision,
            };
        }
        let on_device = upload_batches(device, &images, &labels, image_len, shape);
        // The device copy is the one used: the floats are not kept twice.
        Self {
            images: Vec::new(),
            labels,
            image_len,
            on_device: Some(on_device),
            precision,
        }
    }

    pub fn evaluate(
        &self,
        model: &Classifier,
        device: &Device,
        shape: ModelShape,
    ) -> Result<Evaluation, TrainError> {
        match &self.on_device {
            Some(batches) => {
                evaluate_batches(model, device, batches, shape.classes, self.precision)
            }
            None => {
                let batches =
                    upload_batches(device, &self.images, &self.labels, self.image_len, shape);
                evaluate_batches(model, device, &batches, shape.classes, self.precision)
            }
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

/// Mean loss, accuracy and per-class counts of `model` over a whole split, copying the split
/// to the device batch by batch.
pub fn evaluate(
    model: &Classifier,
    device: &Device,
    images: &[f32],
    labels: &[i64],
    image_len: usize,
    shape: ModelShape,
) -> Result<Evaluation, TrainError> {
    let batches = upload_batches(device, images, labels, image_len, shape);
    evaluate_batches(model, device, &batches, shape.classes, Precision::F32)
}

/// A split as device batches of [`batch_size`] images.
pub fn upload_batches(
    device: &Device,
    images: &[f32],
    labels: &[i64],
    image_len: usize,
    shape: ModelShape,
) -> Vec<EvalBatch> {
    let batch = batch_size(device, image_len);
    labels
        .chunks(batch)
        .enumerate()
        .map(|(start, chunk)| {
            let n = chunk.len();
            let offset = start * batch * image_len;
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

/// Mean loss, accuracy and per-class counts of `model` over batches already on the device.
/// The confusion matrix is summed on the device (one-hot truth × one-hot prediction), so the
/// whole pass reads back once however many batches and classes there are.
pub fn evaluate_batches(
    model: &Classifier,
    device: &Device,
    batches: &[EvalBatch],
    classes: usize,
    precision: Precision,
) -> Result<Evaluation, TrainError> {
    let model = model.valid();
    let loss_fn = CrossEntropyLoss::new(None, device);
    let class_ids = Tensor::<1, Int>::arange(0..classes as i64, device).reshape([1, classes]);
    let mut loss_total = Tensor::<1>::zeros([1], device);
    let mut confusion = Tensor::<2>::zeros([classes, classes], device);
    let mut count = 0usize;
    for (input, targets) in batches {
        let n = targets.dims()[0];
        count += n;
        let logits = model.forward_in(input.clone(), precision);
        loss_total = loss_total + loss_fn.forward(logits.clone(), targets.clone()) * n as f32;
        let ids = class_ids.clone().expand([n, classes]);
        let one_hot =
            |labels: Tensor<2, Int>| labels.expand([n, classes]).equal(ids.clone()).float();
        let truth = one_hot(targets.clone().reshape([n, 1]));
        let predicted = one_hot(logits.argmax(1));
        confusion = confusion + truth.transpose().matmul(predicted);
    }
    let values = read_floats(Tensor::cat(
        vec![loss_total, confusion.reshape([classes * classes])],
        0,
    ))?;
    let matrix: Vec<u64> = values[1..].iter().map(|&v| v.round() as u64).collect();
    let classes = ClassCounts::from_matrix(&matrix, classes);
    let n = count.max(1) as f64;
    Ok(Evaluation {
        loss: values[0] as f64 / n,
        accuracy: crate::metrics::accuracy(&classes),
        classes,
    })
}
