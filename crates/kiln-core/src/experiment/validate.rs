//! Range and consistency checks on a typed experiment, each error pointing at the line that set
//! the offending value.

use std::path::Path;

use super::Experiment;
use super::error::ConfigError;
use super::layers::Layer;

struct Checker<'a> {
    layer: &'a Layer,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, key: &str, value: impl ToString, problem: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            origin: self.layer.origin(key),
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.into(),
        });
    }

    fn require(&mut self, ok: bool, key: &str, value: impl ToString, problem: &str) {
        if !ok {
            self.fail(key, value, problem);
        }
    }
}

pub fn check(experiment: &Experiment, layer: &Layer) -> Result<(), ConfigError> {
    let mut c = Checker {
        layer,
        errors: Vec::new(),
    };
    check_data(&mut c, experiment);
    check_model(&mut c, experiment);
    check_augment(&mut c, experiment);
    check_train(&mut c, experiment);
    check_schedule(&mut c, experiment);
    let m = &experiment.monitor;
    c.require(
        m.gap_threshold > 0.0 && m.gap_threshold < 1.0,
        "monitor.gap_threshold",
        m.gap_threshold,
        "expected an accuracy gap between 0 and 1 (e.g. 0.05 for 5 points)",
    );
    c.require(
        m.patience >= 1,
        "monitor.patience",
        m.patience,
        "expected at least 1 epoch",
    );
    c.require(
        m.underfit_accuracy > 0.0 && m.underfit_accuracy <= 1.0,
        "monitor.underfit_accuracy",
        m.underfit_accuracy,
        "expected an accuracy in (0, 1]",
    );
    c.require(
        m.slow_loss_drop > 0.0 && m.slow_loss_drop < 1.0,
        "monitor.slow_loss_drop",
        m.slow_loss_drop,
        "expected a fraction between 0 and 1 (e.g. 0.05 for 5% per epoch)",
    );
    c.require(
        m.class_recall_gap > 0.0 && m.class_recall_gap < 1.0,
        "monitor.class_recall_gap",
        m.class_recall_gap,
        "expected a recall gap between 0 and 1 (e.g. 0.25 for 25 points)",
    );
    match c.errors.len() {
        0 => Ok(()),
        1 => Err(c.errors.remove(0)),
        _ => Err(ConfigError::Several(c.errors)),
    }
}

fn check_data(c: &mut Checker, experiment: &Experiment) {
    let d = &experiment.data;
    if !d.is_bundled() {
        let root = Path::new(&d.dataset);
        if !root.is_dir() {
            c.fail(
                "data.dataset",
                format!("\"{}\"", d.dataset),
                format!(
                    "no such folder; expected {} or a dataset folder",
                    super::datasets::bundled_names()
                ),
            );
        } else if let Some(csv) = &d.csv {
            let csv_path = root.join(csv);
            if !csv_path.is_file() {
                c.fail(
                    "data.csv",
                    format!("\"{csv}\""),
                    format!("no such file: {}", csv_path.display()),
                );
            }
            let images = root.join(&d.image_dir);
            if !images.is_dir() {
                c.fail(
                    "data.image_dir",
                    format!("\"{}\"", d.image_dir),
                    format!("no such folder: {}", images.display()),
                );
            }
        }
    }
    if let Some(size) = d.image_size {
        c.require(
            (1..=4096).contains(&size),
            "data.image_size",
            size,
            "expected a side length between 1 and 4096 pixels",
        );
    }
    if let Some(channels) = d.channels {
        c.require(
            channels == 1 || channels == 3,
            "data.channels",
            channels,
            "expected 1 (grey) or 3 (RGB)",
        );
    }
    c.require(
        d.validation_fraction > 0.0 && d.validation_fraction < 1.0,
        "data.validation_fraction",
        d.validation_fraction,
        "expected a fraction strictly between 0 and 1",
    );
    if let Some(n) = d.train_images {
        c.require(n >= 1, "data.train_images", n, "expected at least 1 image");
    }
}

fn check_model(c: &mut Checker, experiment: &Experiment) {
    let m = &experiment.model;
    let list = |v: &[usize]| format!("{v:?}");
    if m.conv_channels.is_empty() {
        c.fail(
            "model.conv_channels",
            "[]",
            "expected at least one conv block, e.g. [16, 32]",
        );
    } else if m.conv_channels.contains(&0) {
        c.fail(
            "model.conv_channels",
            list(&m.conv_channels),
            "every conv block needs at least 1 channel",
        );
    } else if m.backbone.is_none() {
        let blocks = m.conv_channels.len();
        let size = experiment
            .data
            .image_size
            .unwrap_or_else(|| experiment.data.native_image_size());
        let needed = 1usize.checked_shl(blocks as u32).unwrap_or(usize::MAX);
        if size < needed {
            c.fail(
                "model.conv_channels",
                list(&m.conv_channels),
                format!(
                    "{blocks} pooling layers need images of at least {needed}×{needed}, \
                     but the images are {size}×{size}; remove a conv block or raise data.image_size"
                ),
            );
        }
    }
    c.require(
        (1..=15).contains(&m.kernel_size),
        "model.kernel_size",
        m.kernel_size,
        "expected a kernel size between 1 and 15",
    );
    c.require(
        !m.dense.contains(&0),
        "model.dense",
        list(&m.dense),
        "every dense layer needs at least 1 unit",
    );
    c.require(
        m.freeze_epochs == 0 || m.backbone.is_some(),
        "model.freeze_epochs",
        m.freeze_epochs,
        "only a backbone can be frozen: set model.backbone",
    );
    c.require(
        m.backbone_lr_factor.is_finite() && m.backbone_lr_factor > 0.0,
        "model.backbone_lr_factor",
        m.backbone_lr_factor,
        "expected a positive factor on the learning rate (0.1: the backbone learns 10x slower)",
    );
    c.require(
        m.backbone_lr_factor == 1.0 || m.backbone.is_some(),
        "model.backbone_lr_factor",
        m.backbone_lr_factor,
        "only a backbone can have its own rate: set model.backbone",
    );
    if let Some(weights) = &m.weights {
        let shown = format!("\"{weights}\"");
        if m.backbone.is_none() {
            c.fail(
                "model.weights",
                &shown,
                "pretrained weights need model.backbone (\"resnet18\", \"resnet34\", \
                 \"resnet50\" or \"mobilenet_v2\")",
            );
        } else if !Path::new(weights).is_file() {
            let backbone = m.backbone.map_or("resnet18", |b| b.name());
            c.fail(
                "model.weights",
                &shown,
                format!(
                    "no such file. torchvision's ImageNet weights go there with PyTorch (once, \
                     online): python3 -c \"import torch, torchvision; torch.save(torchvision.\
                     models.{backbone}(weights='DEFAULT').state_dict(), '{weights}')\""
                ),
            );
        }
        let channels = experiment.data.channel_count();
        c.require(
            channels == 3,
            "model.weights",
            shown,
            &format!(
                "torchvision's weights take RGB images, but the data has {channels} channel(s): \
                 set data.channels = 3 (grey images are repeated into three)"
            ),
        );
    }
    c.require(
        m.dropout.is_finite() && (0.0..1.0).contains(&m.dropout),
        "model.dropout",
        m.dropout,
        "expected a probability in [0, 1)",
    );
}

fn check_augment(c: &mut Checker, experiment: &Experiment) {
    let a = &experiment.augment;
    let ranges = [
        ("augment.rotation", a.rotation, 180.0, "degrees in [0, 180]"),
        ("augment.shear", a.shear, 45.0, "degrees in [0, 45]"),
        (
            "augment.shift",
            a.shift,
            0.5,
            "a fraction of the image in [0, 0.5]",
        ),
        ("augment.zoom", a.zoom, 0.9, "a fraction in [0, 0.9]"),
    ];
    for (key, value, max, expected) in ranges {
        c.require(
            value.is_finite() && (0.0..=max).contains(&value),
            key,
            value,
            &format!("expected {expected}"),
        );
    }
}

fn check_train(c: &mut Checker, experiment: &Experiment) {
    let t = &experiment.train;
    c.require(
        t.epochs >= 1,
        "train.epochs",
        t.epochs,
        "expected at least 1 epoch",
    );
    c.require(
        t.batch_size >= 1,
        "train.batch_size",
        t.batch_size,
        "expected a positive batch size",
    );
    c.require(
        t.learning_rate.is_finite() && t.learning_rate > 0.0,
        "train.learning_rate",
        t.learning_rate,
        "expected a positive learning rate, e.g. 1e-3",
    );
    c.require(
        t.momentum.is_finite() && (0.0..1.0).contains(&t.momentum),
        "train.momentum",
        t.momentum,
        "expected a momentum in [0, 1)",
    );
    c.require(
        t.weight_decay.is_finite() && t.weight_decay >= 0.0,
        "train.weight_decay",
        t.weight_decay,
        "expected a non-negative weight decay",
    );
    c.require(
        t.label_smoothing.is_finite() && (0.0..1.0).contains(&t.label_smoothing),
        "train.label_smoothing",
        t.label_smoothing,
        "expected a share in [0, 1), e.g. 0.1",
    );
    c.require(
        t.grad_clip_norm.is_finite() && t.grad_clip_norm >= 0.0,
        "train.grad_clip_norm",
        t.grad_clip_norm,
        "expected a non-negative gradient norm (0 is off), e.g. 1.0",
    );
    if let Some(super::ClassWeights::Given(weights)) = &t.class_weights {
        c.require(
            !weights.is_empty() && weights.iter().all(|w| w.is_finite() && *w > 0.0),
            "train.class_weights",
            format!("{weights:?}"),
            "expected \"balanced\" or one positive number per class",
        );
    }
    c.require(
        t.backend.is_built(),
        "train.backend",
        "\"torch\"",
        &format!(
            "this kiln was built without the torch feature ({}); \
             expected \"auto\", \"gpu\", \"cuda\", \"wgpu\" or \"cpu\"",
            super::TORCH_BUILD
        ),
    );
}

/// A float setting: its key, value, the test it must pass, and what is expected.
type FloatRule<'a> = (&'a str, f64, fn(f64) -> bool, &'a str);

fn check_schedule(c: &mut Checker, experiment: &Experiment) {
    let s = &experiment.schedule;
    let ranges: [FloatRule; 7] = [
        (
            "schedule.gamma",
            s.gamma,
            |v| v > 0.0 && v <= 1.0,
            "a factor in (0, 1]",
        ),
        (
            "schedule.factor",
            s.factor,
            |v| v > 0.0 && v < 1.0,
            "a factor in (0, 1)",
        ),
        (
            "schedule.pct_start",
            s.pct_start,
            |v| v > 0.0 && v < 1.0,
            "a share in (0, 1)",
        ),
        (
            "schedule.div_factor",
            s.div_factor,
            |v| v >= 1.0,
            "at least 1",
        ),
        (
            "schedule.final_div_factor",
            s.final_div_factor,
            |v| v >= 1.0,
            "at least 1",
        ),
        (
            "schedule.min_lr",
            s.min_lr,
            |v| v >= 0.0,
            "a non-negative rate",
        ),
        (
            "schedule.min_delta",
            s.min_delta,
            |v| v >= 0.0,
            "a non-negative loss difference",
        ),
    ];
    for (key, value, ok, expected) in ranges {
        c.require(
            value.is_finite() && ok(value),
            key,
            value,
            &format!("expected {expected}"),
        );
    }
    c.require(
        s.min_lr < experiment.train.learning_rate,
        "schedule.min_lr",
        s.min_lr,
        "expected a rate below train.learning_rate",
    );
    c.require(
        s.every_epochs >= 1,
        "schedule.every_epochs",
        s.every_epochs,
        "expected at least 1 epoch",
    );
    c.require(
        s.patience >= 1,
        "schedule.patience",
        s.patience,
        "expected at least 1 epoch",
    );
    let stop = &experiment.early_stopping;
    c.require(
        stop.min_delta.is_finite() && stop.min_delta >= 0.0,
        "early_stopping.min_delta",
        stop.min_delta,
        "expected a non-negative improvement",
    );
    c.require(
        s.warmup_epochs < experiment.train.epochs,
        "schedule.warmup_epochs",
        s.warmup_epochs,
        "expected fewer warm-up epochs than train.epochs",
    );
}

/// Negative integers for integer keys reach serde as a type error; report them with their
/// origin instead. (A float key given a whole number, `learning_rate = -1`, goes on to its own
/// range check, which says what that setting must be.)
pub fn negative_integer(layer: &Layer) -> Option<ConfigError> {
    layer.origins.keys().find_map(|key| {
        if !matches!(
            super::schema::kind_of(key),
            Some(super::schema::Kind::Integer | super::schema::Kind::IntegerList)
        ) {
            return None;
        }
        let value = layer.get(key)?;
        let negative = match value {
            toml::Value::Integer(n) => *n < 0,
            toml::Value::Array(items) => {
                items.iter().any(|i| i.as_integer().is_some_and(|n| n < 0))
            }
            _ => false,
        };
        negative.then(|| ConfigError::Invalid {
            origin: layer.origin(key),
            key: key.clone(),
            value: value.to_string(),
            problem: "expected a non-negative integer".into(),
        })
    })
}
