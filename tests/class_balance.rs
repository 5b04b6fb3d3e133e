//! Imbalanced classes and gradient clipping in training: class weights and label smoothing
//! change the loss as computed by hand, the balanced sampler draws each class equally often,
//! clipping bounds each parameter's step, and on a skewed data set the weights and the sampler
//! raise the rare class's recall over plain training.

use std::sync::Arc;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use kiln::data::{self, Dataset, sampler::epoch_order};
use kiln::experiment::{DataConfig, Experiment, Sampler, TrainConfig};
use kiln::model::Classifier;
use kiln::protocol::{EpochMetrics, Event, EventKind};
use kiln::train::{self, TrainOptions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common::{digits_shape, repo_path, scratch, training_lock};
use crate::mixed_precision::weights_of;

const LOGITS: [[f32; 3]; 4] = [
    [2.0, 0.5, -1.0],
    [0.1, 1.5, 0.3],
    [-0.5, 0.2, 0.9],
    [1.0, 1.0, 1.0],
];
const TARGETS: [i64; 4] = [0, 2, 2, 1];

/// The loss burn computes for `LOGITS` and `TARGETS` under these settings.
fn loss_of(train: &TrainConfig, weights: Option<&[f64]>) -> f64 {
    let device = Device::default();
    let logits = Tensor::<2>::from_data(TensorData::new(LOGITS.concat(), [4, 3]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(TARGETS.to_vec(), [4]), &device);
    let loss = train::loss::training_loss(train, weights, &device).forward(logits, targets);
    loss.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()[0] as f64
}

/// By hand: Σᵢ Σ_c w_c · q_ic · (−log p_ic) / Σᵢ w_{yᵢ}, with q the (smoothed) target.
fn by_hand(weights: [f64; 3], smoothing: f64) -> f64 {
    let mut total = 0.0;
    let mut norm = 0.0;
    for (row, &target) in LOGITS.iter().zip(&TARGETS) {
        let z: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
        for (c, &v) in row.iter().enumerate() {
            let hot = if c as i64 == target { 1.0 } else { 0.0 };
            let q = hot * (1.0 - smoothing) + smoothing / 3.0;
            total += weights[c] * q * -((v as f64).exp() / z).ln();
        }
        norm += weights[target as usize];
    }
    total / norm
}

#[test]
fn class_weights_and_label_smoothing_change_the_loss_as_computed_by_hand() {
    let plain = TrainConfig::default();
    let unweighted = loss_of(&plain, None);
    assert!((unweighted - by_hand([1.0; 3], 0.0)).abs() < 1e-5);
    let weights = [0.5, 1.0, 3.0];
    let weighted = loss_of(&plain, Some(&weights));
    assert!(
        (weighted - by_hand(weights, 0.0)).abs() < 1e-5,
        "{weighted} vs {}",
        by_hand(weights, 0.0)
    );
    assert!((weighted - unweighted).abs() > 0.05, "the weights matter");
    let smoothed = TrainConfig {
        label_smoothing: 0.1,
        ..TrainConfig::default()
    };
    let both = loss_of(&smoothed, Some(&weights));
    assert!(
        (both - by_hand(weights, 0.1)).abs() < 1e-5,
        "{both} vs {}",
        by_hand(weights, 0.1)
    );
    assert!((loss_of(&smoothed, None) - by_hand([1.0; 3], 0.1)).abs() < 1e-5);
}

#[test]
fn the_balanced_sampler_draws_each_class_equally_often() {
    // 900 images of class 0, 100 of class 1; the first 50 of the whole set are not training.
    let labels: Vec<usize> = (0..1000).map(|i| usize::from(i % 10 == 9)).collect();
    let train: Vec<usize> = (50..1000).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let order = epoch_order(&train, &labels, Sampler::Balanced, &mut rng);
    assert_eq!(order.len(), train.len());
    assert!(order.iter().all(|i| train.contains(i)));
    let rare = order.iter().filter(|&&i| labels[i] == 1).count() as f64 / order.len() as f64;
    assert!((rare - 0.5).abs() < 0.05, "rare class share {rare}");
    // The same seed draws the same epoch; shuffling keeps each image once.
    let again = epoch_order(
        &train,
        &labels,
        Sampler::Balanced,
        &mut ChaCha8Rng::seed_from_u64(7),
    );
    assert_eq!(order, again);
    let mut shuffled = epoch_order(&train, &labels, Sampler::Shuffle, &mut rng);
    assert_ne!(shuffled, train);
    shuffled.sort_unstable();
    assert_eq!(shuffled, train);
}

/// The largest change of any one parameter tensor (L2 norm) after one SGD step at rate 1.
fn largest_step(clip: f64) -> f64 {
    let device = Device::default().autodiff();
    device.seed(3);
    let model = Classifier::new(
        &kiln::experiment::ModelConfig::default(),
        digits_shape(),
        &device,
    );
    let before = weights_of(&model);
    let train = TrainConfig {
        optimizer: kiln::experiment::OptimizerKind::Sgd,
        momentum: 0.0,
        grad_clip_norm: clip,
        ..TrainConfig::default()
    };
    let mut optimizer = kiln::train::optim::build(&train);
    let images = Tensor::<4>::from_data(
        TensorData::new(
            (0..16 * 64).map(|i| (i % 7) as f32 - 3.0).collect(),
            [16, 1, 8, 8],
        ),
        &device,
    );
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new((0..16).map(|i| i % 10).collect::<Vec<i64>>(), [16]),
        &device,
    );
    let loss =
        train::loss::training_loss(&train, None, &device).forward(model.forward(images), targets);
    let gradients = GradientsParams::from_grads(loss.backward(), &model);
    let after = weights_of(&optimizer.step(1.0, model, gradients).valid());
    before
        .values
        .iter()
        .zip(&after.values)
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(x, y)| ((x - y) as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .fold(0.0, f64::max)
}

#[test]
fn gradient_clipping_bounds_each_parameter_step() {
    let free = largest_step(0.0);
    assert!(free > 0.05, "an unclipped step moves some tensor by {free}");
    let clipped = largest_step(0.01);
    assert!(
        clipped <= 0.01 * 1.001 && clipped > 0.005,
        "clipped to norm 0.01: {clipped}"
    );
}

/// Digits as two classes: 0–4 (all their images) and 5–9 (one in ten): 10 to 1.
fn skewed_digits() -> Arc<Dataset> {
    let digits = data::load(&DataConfig::default()).unwrap();
    let mut kept = Vec::new();
    let mut rare_seen = 0;
    for (i, &label) in digits.labels.iter().enumerate() {
        if label < 5 {
            kept.push((i, 0));
        } else {
            rare_seen += 1;
            if rare_seen % 10 == 0 {
                kept.push((i, 1));
            }
        }
    }
    let mut pixels = Vec::new();
    for &(i, _) in &kept {
        pixels.extend_from_slice(digits.image(i));
    }
    Arc::new(Dataset {
        name: "skewed-digits".into(),
        classes: vec!["low".into(), "high".into()],
        labels: kept.iter().map(|&(_, label)| label).collect(),
        pixels,
        skipped: Vec::new(),
        ..digits
    })
}

/// The rare class's validation recall after training `skewed_digits` with these settings.
fn rare_recall(overrides: &[&str]) -> (f64, Vec<Event>) {
    let mut all = vec![
        "train.backend=\"cpu\"".to_string(),
        "train.epochs=2".into(),
        "train.batch_size=32".into(),
        "data.validation_fraction=0.4".into(),
        "model.dense=[]".into(),
    ];
    all.extend(overrides.iter().map(|s| s.to_string()));
    let experiment = Experiment::load(&repo_path("experiments/digits.toml"), &all).unwrap();
    let handle = train::spawn_with_dataset(
        TrainOptions {
            experiment,
            runs_dir: scratch("class-balance"),
        },
        skewed_digits(),
    )
    .unwrap();
    let events: Vec<Event> = handle.events.iter().collect();
    handle.join();
    let last: &EpochMetrics = events
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::Epoch(m) => Some(m),
            _ => None,
        })
        .expect("an epoch");
    let counts = last.classes.as_ref().expect("per-class counts");
    (counts.correct[1] as f64 / counts.support[1] as f64, events)
}

#[test]
fn weights_and_the_balanced_sampler_raise_the_rare_class_recall() {
    let _guard = training_lock();
    let (plain, _) = rare_recall(&[]);
    let (weighted, events) = rare_recall(&["train.class_weights=\"balanced\""]);
    let (sampled, _) = rare_recall(&["train.sampler=\"balanced\""]);
    eprintln!("rare-class recall: plain {plain:.3}, weighted {weighted:.3}, sampled {sampled:.3}");
    assert!(
        weighted > plain + 0.1,
        "weighted {weighted} vs plain {plain}"
    );
    assert!(sampled > plain + 0.1, "sampled {sampled} vs plain {plain}");
    // The run says what it trained with: 10 to 1 gives weights of about 0.55 and 5.5.
    let Some(EventKind::RunStarted(start)) = events.first().map(|e| &e.kind) else {
        panic!("no start event")
    };
    assert_eq!(start.controls.len(), 1, "{:?}", start.controls);
    assert!(
        start.controls[0].starts_with("class weights balanced (0.5"),
        "{:?}",
        start.controls
    );
}

#[test]
fn a_weight_list_that_does_not_fit_the_classes_fails_the_run_with_its_reason() {
    let _guard = training_lock();
    let all = [
        "train.backend=\"cpu\"".to_string(),
        "train.epochs=1".into(),
        "train.class_weights=[1.0, 2.0]".into(),
    ];
    let experiment = Experiment::load(&repo_path("experiments/digits.toml"), &all).unwrap();
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: scratch("class-weights-mismatch"),
    })
    .unwrap();
    let events: Vec<Event> = handle.events.iter().collect();
    handle.join();
    let failed = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Failed { error } => Some(error.clone()),
            _ => None,
        })
        .expect("a failed event");
    assert!(
        failed.contains("gives 2 weight(s) but the data has 10 classes (0, 1, 2"),
        "{failed}"
    );
}
