//! The backbones in torchvision's architecture: each has exactly torchvision's parameter count
//! (for 1000 classes on RGB images; burn's `num_params` also counts batch norm's running
//! statistics, which PyTorch keeps as buffers), turns images into class scores, and trains in a
//! run whose checkpoint loads back.

use burn::tensor::{Device, Distribution, Tensor};
use kiln::experiment::{Backbone, Experiment, ModelConfig};
use kiln::model::{Classifier, ModelShape};
use kiln::protocol::epoch_history;
use kiln::train::{self, TrainOptions, checkpoint};

use crate::common::{repo_path, scratch, training_lock};

fn with_backbone(backbone: Backbone) -> ModelConfig {
    ModelConfig {
        backbone: Some(backbone),
        ..ModelConfig::default()
    }
}

#[test]
fn each_backbone_has_torchvisions_parameter_count() {
    // torchvision's `sum(p.numel() for p in model.parameters())` for its 1000-class models.
    let expected = [
        (Backbone::Resnet18, 11_689_512),
        (Backbone::Resnet34, 21_797_672),
        (Backbone::Resnet50, 25_557_032),
        (Backbone::MobilenetV2, 3_504_872),
    ];
    let imagenet = ModelShape {
        channels: 3,
        height: 224,
        width: 224,
        classes: 1000,
    };
    let device = Device::default();
    for (backbone, count) in expected {
        let model = Classifier::new(&with_backbone(backbone), imagenet, &device);
        assert_eq!(model.trainable_params(), count, "{}", backbone.name());
    }
}

#[test]
fn a_backbone_scores_small_and_grey_images_too() {
    let device = Device::default();
    for backbone in [Backbone::Resnet18, Backbone::MobilenetV2] {
        let shape = ModelShape {
            channels: 1,
            height: 32,
            width: 32,
            classes: 7,
        };
        let model = Classifier::new(&with_backbone(backbone), shape, &device);
        let images = Tensor::<4>::random([2, 1, 32, 32], Distribution::Default, &device);
        let logits = model.forward(images);
        assert_eq!(logits.dims(), [2, 7], "{}", backbone.name());
        let values: Vec<f32> = logits.into_data().convert::<f32>().try_to_vec().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    }
}

#[test]
fn a_resnet_run_trains_and_its_checkpoint_loads_back() {
    let _guard = training_lock();
    let experiment = Experiment::load(
        &repo_path("experiments/digits.toml"),
        &[
            "train.backend=\"cpu\"".to_string(),
            "train.epochs=2".into(),
            "model.backbone=\"resnet18\"".into(),
            "data.image_size=32".into(),
            "train.learning_rate=1e-3".into(),
        ],
    )
    .unwrap();
    let handle = train::spawn(TrainOptions {
        experiment: experiment.clone(),
        runs_dir: scratch("backbone-run"),
    })
    .unwrap();
    let path = handle.run.path.clone();
    let events: Vec<_> = handle.events.iter().collect();
    handle.join();
    let history = epoch_history(&events);
    assert_eq!(history.len(), 2, "{:?}", events.last());
    // Ten classes: chance is 0.1; two epochs of a ResNet from scratch do far better.
    let best = history
        .iter()
        .map(|m| m.validation_accuracy)
        .fold(0.0, f64::max);
    assert!(best > 0.5, "{history:?}");
    let (last, _) = checkpoint::list(&path.join("checkpoints")).pop().unwrap();
    let shape = ModelShape {
        channels: 1,
        height: 32,
        width: 32,
        classes: 10,
    };
    let fresh = Classifier::new(&experiment.model, shape, &Device::default());
    let loaded = checkpoint::load_weights(&last, fresh).expect("the checkpoint fits the model");
    assert_eq!(
        loaded.trainable_params(),
        11_689_512 - 1000 * 512 - 1000 + 10 * 512 + 10 - 64 * 2 * 49
    );
}

/// torchvision's own ResNet-18 and MobileNetV2 (random weights, written by
/// `tests/support/torchvision_reference.py` with PyTorch from PyPI, which `.ci/run` installs):
/// kiln loads each state_dict, as `.pth` and as `.safetensors`, and gives the same logits on the
/// same images, within 1e-4.
/// A folder with torchvision's ResNet-18 and MobileNetV2 (random weights) as `.pth` and
/// `.safetensors` and their logits on a batch of images, written by PyTorch; `None` (the test
/// then skips, saying that `skipped` was not done) without PyTorch, unless KILN_REQUIRE_TORCH
/// is set, when the test fails.
pub(crate) fn torchvision_reference(skipped: &str) -> Option<std::path::PathBuf> {
    let Some(python) = crate::common::python_with("torchvision") else {
        let message = format!(
            "PYTORCH NOT INSTALLED: {skipped}; run .ci/run, or pip install torch torchvision \
             safetensors and set KILN_TEST_PYTHON to that python"
        );
        assert!(
            std::env::var_os("KILN_REQUIRE_TORCH").is_none(),
            "{message}"
        );
        eprintln!("SKIPPED: {message}");
        return None;
    };
    let dir = scratch("torchvision");
    let made = std::process::Command::new(&python)
        .arg(repo_path("tests/support/torchvision_reference.py"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    Some(dir)
}

#[test]
fn torchvision_weights_load_and_give_torchvisions_logits() {
    let Some(dir) = torchvision_reference("the backbones were NOT compared with torchvision")
    else {
        return;
    };
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let device = Device::default();
    let images = Tensor::<4>::from_data(
        burn::tensor::TensorData::new(floats(&reference["images"]), [2, 3, 64, 64]),
        &device,
    );
    let imagenet = ModelShape {
        channels: 3,
        height: 64,
        width: 64,
        classes: 1000,
    };
    for (backbone, name) in [
        (Backbone::Resnet18, "resnet18"),
        (Backbone::MobilenetV2, "mobilenet_v2"),
    ] {
        let expected = floats(&reference["models"][name]["logits"]);
        assert_eq!(
            reference["models"][name]["parameters"].as_u64().unwrap() as usize,
            Classifier::new(&with_backbone(backbone), imagenet, &device).trainable_params()
        );
        for format in ["pth", "safetensors"] {
            let fresh = Classifier::new(&with_backbone(backbone), imagenet, &device);
            let file = dir.join(format!("{name}.{format}"));
            let loaded = kiln::pretrained::load(fresh, backbone, &file)
                .unwrap_or_else(|err| panic!("{err}"));
            assert!(
                loaded.replaced_head.is_empty(),
                "1000 classes: the head fits"
            );
            let got: Vec<f32> = loaded
                .model
                .forward(images.clone())
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap();
            assert_eq!(got.len(), expected.len());
            let worst = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("{name}.{format}: logits within {worst:e} of torchvision's");
            assert!(
                worst < 1e-4,
                "{name}.{format}: logits differ by up to {worst}"
            );
        }
    }

    // A head for other classes is replaced and said so; a file of the other architecture, or
    // a truncated one, is refused naming the file and the first key that does not fit.
    let ten = ModelShape {
        classes: 10,
        ..imagenet
    };
    let loaded = kiln::pretrained::load(
        Classifier::new(&with_backbone(Backbone::Resnet18), ten, &device),
        Backbone::Resnet18,
        &dir.join("resnet18.safetensors"),
    )
    .unwrap();
    let mut replaced = loaded.replaced_head.clone();
    replaced.sort();
    assert_eq!(replaced, vec!["output.bias", "output.weight"]);
    let wrong = kiln::pretrained::load(
        Classifier::new(&with_backbone(Backbone::Resnet18), imagenet, &device),
        Backbone::Resnet18,
        &dir.join("mobilenet_v2.pth"),
    )
    .err()
    .expect("a MobileNet file is no ResNet")
    .to_string();
    assert!(
        wrong.contains("mobilenet_v2.pth") && wrong.contains("resnet18"),
        "{wrong}"
    );
    let bytes = std::fs::read(dir.join("resnet18.safetensors")).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let truncated = kiln::pretrained::load(
        Classifier::new(&with_backbone(Backbone::Resnet18), imagenet, &device),
        Backbone::Resnet18,
        &cut,
    )
    .err()
    .expect("half a file")
    .to_string();
    assert!(
        truncated.starts_with(&cut.display().to_string()),
        "{truncated}"
    );

    // Fine-tuning: torchvision's weights, a new head for digits' ten classes, ImageNet's
    // normalisation, grey digits repeated into three channels; the backbone frozen for the
    // first epoch (its weights and batch norm statistics untouched while the head trains),
    // then trained.
    let _guard = training_lock();
    let weights = dir.join("resnet18.safetensors");
    let experiment = Experiment::load(
        &repo_path("experiments/digits.toml"),
        &[
            "train.backend=\"cpu\"".to_string(),
            "train.epochs=2".into(),
            "data.train_images=256".into(),
            "data.image_size=32".into(),
            "data.channels=3".into(),
            "model.backbone=\"resnet18\"".into(),
            "model.freeze_epochs=1".into(),
            kiln::experiment::string_override("model.weights", &weights.display().to_string()),
        ],
    )
    .unwrap();
    let handle = train::spawn(TrainOptions {
        experiment: experiment.clone(),
        runs_dir: scratch("fine-tune"),
    })
    .unwrap();
    let path = handle.run.path.clone();
    let events: Vec<_> = handle.events.iter().collect();
    handle.join();
    assert_eq!(epoch_history(&events).len(), 2, "{:?}", events.last());
    let Some(kiln::protocol::EventKind::RunStarted(start)) = events.first().map(|e| &e.kind) else {
        panic!("no start")
    };
    assert_eq!(
        start.controls[..2],
        [
            "weights resnet18.safetensors (100 tensors, a new head for 10 classes)",
            "backbone frozen for 1 epoch(s)"
        ]
    );
    // It starts frozen, and the unfreezing at epoch 2 is an event (marked on the curves).
    assert!(start.backbone_frozen);
    let switches: Vec<_> = events
        .iter()
        .filter_map(|e| match e.kind {
            kiln::protocol::EventKind::HyperParameterChanged {
                parameter: kiln::protocol::HyperParameter::BackboneFrozen,
                from,
                to,
            } => Some((e.epoch, from, to)),
            _ => None,
        })
        .collect();
    assert_eq!(switches, [(Some(2), 1.0, 0.0)]);
    let preprocessing = std::fs::read_to_string(path.join("preprocessing.json")).unwrap();
    assert!(preprocessing.contains("0.485"), "{preprocessing}");

    // Every float tensor of a checkpoint's model: the head's two first, then the backbone's
    // (batch norm's running statistics included).
    let digits = ModelShape {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
    };
    let tensors_of = |model: Classifier| crate::mixed_precision::weights_of(&model).values;
    let pretrained = tensors_of(
        kiln::pretrained::load(
            Classifier::new(&experiment.model, digits, &device),
            Backbone::Resnet18,
            &weights,
        )
        .unwrap()
        .model,
    );
    let after_epoch = |epoch: usize| {
        let (checkpoint, _) = checkpoint::list(&path.join("checkpoints"))
            .into_iter()
            .find(|(_, state)| state.epochs_completed == epoch)
            .unwrap_or_else(|| panic!("a checkpoint after epoch {epoch}"));
        tensors_of(
            checkpoint::load_weights(
                &checkpoint,
                Classifier::new(&experiment.model, digits, &device),
            )
            .unwrap(),
        )
    };
    let (first, second) = (after_epoch(1), after_epoch(2));
    assert_eq!(
        first[2..],
        pretrained[2..],
        "the frozen backbone is as loaded after epoch 1"
    );
    assert_ne!(first[..2], second[..2], "the head trains");
    let changed = second[2..]
        .iter()
        .zip(&pretrained[2..])
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        changed > 50,
        "unfrozen, the backbone trains: {changed} tensors changed"
    );
}

#[test]
fn weights_that_cannot_be_used_are_refused_before_any_run() {
    let runs = scratch("weights-refused");
    let refused = |settings: &[&str], expected: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
        command
            .args([
                "train",
                "experiments/digits.toml",
                "--headless",
                "--runs-dir",
            ])
            .arg(&runs)
            .current_dir(repo_path(""));
        for setting in settings {
            command.args(["--set", setting]);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{settings:?}: {stderr}");
    };
    refused(
        &[
            "model.backbone=resnet18",
            "data.channels=3",
            "model.weights=nowhere.pth",
        ],
        "no such file",
    );
    refused(
        &["model.weights=Cargo.toml", "data.channels=3"],
        "pretrained weights need model.backbone",
    );
    refused(
        &["model.backbone=resnet18", "model.weights=Cargo.toml"],
        "set data.channels = 3",
    );
    assert!(
        std::fs::read_dir(&runs).map_or(true, |mut d| d.next().is_none()),
        "no run left"
    );
}
