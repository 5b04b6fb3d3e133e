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
