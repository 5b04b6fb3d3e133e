//! `kiln bench --inference`: how fast a trained model is used. `evaluate` of 1,000 MNIST images
//! (the model already loaded) and `predict` on 224×224 JPEG files with the article's model,
//! decoding included, beside decoding alone in the same run (the part no model speed removes).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::median;
use crate::data::{self, ImageShape, Normalizer, Preprocessing, decode_image};
use crate::experiment::{BackendChoice, DataConfig, Experiment, ModelConfig, Precision};
use crate::infer::TrainedModel;
use crate::infer::predict::{self, Prediction};
use crate::model::{Classifier, ModelShape};
use crate::protocol::BackendSummary;
use crate::train;

#[derive(Debug, Clone, Serialize)]
pub struct InferenceFigures {
    pub backend: String,
    pub evaluate_images: usize,
    /// Median seconds of one evaluation (host-to-device copy, forward passes, one read).
    pub evaluate_seconds: f64,
    pub predict_images: usize,
    /// Median images per second of `predict` from files, decoding and resizing included.
    pub predict_images_per_second: f64,
    /// Median images per second of decoding and resizing the same files alone.
    pub decode_images_per_second: f64,
}

const EVALUATE_IMAGES: usize = 1000;
const PREDICT_IMAGES: usize = 256;
const SIDE: u32 = 224;
const REPEAT: usize = 3;

pub fn run(backend: BackendChoice, out: &mut impl Write) -> anyhow::Result<InferenceFigures> {
    let (device, summary) = train::choose_backend(backend, Precision::F32)?;
    let (evaluate_images, evaluate_seconds) = time_evaluate(backend, &device)?;
    let _ = writeln!(
        out,
        "evaluate  {evaluate_images} images of 28x28 on {}: {evaluate_seconds:.3} s ({:.0} img/s)",
        summary.name,
        evaluate_images as f64 / evaluate_seconds
    );
    let folder = std::env::temp_dir().join(format!("kiln-bench-jpeg-{}", std::process::id()));
    let rates = time_predict(&folder, &device, &summary);
    let _ = std::fs::remove_dir_all(&folder);
    let (predict, decode) = rates?;
    let figures = InferenceFigures {
        backend: summary.name.clone(),
        evaluate_images,
        evaluate_seconds,
        predict_images: PREDICT_IMAGES,
        predict_images_per_second: predict,
        decode_images_per_second: decode,
    };
    let _ = writeln!(
        out,
        "predict   {} JPEGs of 224x224, article model on {}: {:.0} img/s; decoding alone {:.0} img/s \
         (predict/decode {:.2})",
        figures.predict_images,
        summary.name,
        figures.predict_images_per_second,
        figures.decode_images_per_second,
        figures.predict_images_per_second / figures.decode_images_per_second
    );
    Ok(figures)
}

/// `kiln evaluate`'s path on the first 1,000 bundled MNIST images with the baseline model (as
/// the `mnist` training workload has it): the images evaluated, and the median seconds.
fn time_evaluate(
    backend: BackendChoice,
    device: &burn::tensor::Device,
) -> anyhow::Result<(usize, f64)> {
    let mnist = data::load(&DataConfig {
        dataset: "mnist-5k".into(),
        ..DataConfig::default()
    })?;
    let indices: Vec<usize> = (0..EVALUATE_IMAGES.min(mnist.len())).collect();
    let normalizer = Normalizer::fit(&mnist, &indices);
    let images = normalizer.images(&mnist, &indices);
    let labels: Vec<i64> = indices.iter().map(|&i| mnist.labels[i] as i64).collect();
    let shape = ModelShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: mnist.classes.len(),
    };
    let mnist_workload = super::workloads()
        .into_iter()
        .find(|w| w.name == "mnist")
        .expect("the mnist workload exists");
    let baseline = super::experiment_for(&mnist_workload, backend, Precision::F32, 1);
    let model = Classifier::new(&baseline.model, shape, device);
    let evaluate = || -> anyhow::Result<f64> {
        let started = Instant::now();
        train::eval::evaluate(&model, device, &images, &labels, mnist.image_len(), shape)?;
        Ok(started.elapsed().as_secs_f64())
    };
    evaluate()?; // warm-up
    let seconds = median((0..REPEAT).map(|_| evaluate()).collect::<Result<_, _>>()?);
    Ok((indices.len(), seconds))
}

/// `kiln predict`'s path on 224×224 JPEG files written to `folder` with the article's model
/// (decoding included), beside decoding alone, alternating: median images per second of each.
fn time_predict(
    folder: &Path,
    device: &burn::tensor::Device,
    backend: &BackendSummary,
) -> anyhow::Result<(f64, f64)> {
    write_jpegs(folder, PREDICT_IMAGES)?;
    let files: Vec<std::path::PathBuf> = (0..PREDICT_IMAGES)
        .map(|i| folder.join(format!("{i:04}.jpg")))
        .collect();
    let trained = article_model(folder, device, backend);
    let predict_all = |files: &[std::path::PathBuf]| -> anyhow::Result<f64> {
        let inputs = predict::expand_inputs(files);
        let started = Instant::now();
        let mut classified = 0usize;
        predict::predict(&trained, inputs, 1, |p: &Prediction| {
            classified += usize::from(p.outcome.is_ok());
        })?;
        anyhow::ensure!(
            classified == files.len(),
            "only {classified} files classified"
        );
        Ok(files.len() as f64 / started.elapsed().as_secs_f64())
    };
    let decode_all = || -> f64 {
        let shape = ImageShape {
            side: SIDE as usize,
            channels: 3,
        };
        let started = Instant::now();
        let decoded = files
            .par_iter()
            .filter(|f| decode_image(f, shape).is_ok())
            .count();
        decoded as f64 / started.elapsed().as_secs_f64()
    };
    predict_all(&files[..64])?; // warm-up
    decode_all();
    let mut predict_rates = Vec::new();
    let mut decode_rates = Vec::new();
    // Alternating, so a disturbance on a shared machine hits both alike.
    for _ in 0..REPEAT {
        predict_rates.push(predict_all(&files)?);
        decode_rates.push(decode_all());
    }
    Ok((median(predict_rates), median(decode_rates)))
}

/// The article's CNN on 224×224 RGB vehicles, fresh weights, as `kiln predict` loads a run's.
fn article_model(
    folder: &Path,
    device: &burn::tensor::Device,
    backend: &BackendSummary,
) -> TrainedModel {
    let article = ModelConfig {
        conv_channels: vec![16, 32],
        kernel_size: 3,
        dense: Vec::new(),
        ..ModelConfig::default()
    };
    let preprocessing = Preprocessing {
        classes: vec!["emergency".into(), "non-emergency".into()],
        channels: 3,
        height: SIDE as usize,
        width: SIDE as usize,
        mean: vec![0.5; 3],
        std: vec![0.25; 3],
    };
    let shape = ModelShape {
        channels: 3,
        height: SIDE as usize,
        width: SIDE as usize,
        classes: 2,
    };
    TrainedModel {
        run_id: "bench".into(),
        run_path: folder.to_path_buf(),
        experiment: Experiment {
            model: article.clone(),
            ..Experiment::default()
        },
        checkpoint: "fresh weights".into(),
        state: crate::train::checkpoint::CheckpointState {
            epochs_completed: 0,
            epoch: 0,
            batches_done: 0,
            step: 0,
            learning_rate: 0.0,
            lr_scale: None,
            dropout: 0.0,
            backbone_frozen_by_hand: None,
            requested: false,
        },
        note: None,
        preprocessing,
        shape,
        model: Classifier::new(&article, shape, device),
        device: device.clone(),
        backend: backend.clone(),
    }
}

/// `count` 224×224 JPEGs with some structure (gradients and stripes), so decoding does real work.
fn write_jpegs(folder: &Path, count: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder)?;
    for i in 0..count {
        let image = image::RgbImage::from_fn(SIDE, SIDE, |x, y| {
            let k = i as u32;
            image::Rgb([
                ((x * 3 + k * 7) % 256) as u8,
                ((y * 5 + k * 11) % 256) as u8,
                (((x / 8 + y / 8 + k) % 2) * 200) as u8,
            ])
        });
        image.save(folder.join(format!("{i:04}.jpg")))?;
    }
    Ok(())
}
