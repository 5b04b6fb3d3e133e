//! Fine-tuning controls on a backbone model: the backbone frozen by hand mid-run (an event on
//! the curves that survives a resume), its own learning rate (a discriminative rate), and the
//! commands that use a trained model — evaluate, predict, export and fork — on a backbone run.

use std::path::Path;

use burn::tensor::Device;
use kiln::experiment::Experiment;
use kiln::model::{Classifier, ModelShape};
use kiln::monitor::RunView;
use kiln::protocol::{Command, Event, EventKind, HyperParameter, Outcome, epoch_history};
use kiln::train::{self, TrainOptions, checkpoint};

use crate::common::{kiln_ok, repo_path, scratch, training_lock, wait_for};

/// Digits through a fresh ResNet-18 at 32×32 on the CPU: a few seconds an epoch.
fn resnet_on_digits(extra: &[&str]) -> Experiment {
    let mut settings: Vec<String> = [
        "train.backend=\"cpu\"",
        "model.backbone=\"resnet18\"",
        "data.image_size=32",
        "data.train_images=256",
        "train.batch_size=64",
        "train.learning_rate=1e-3",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    settings.extend(extra.iter().map(ToString::to_string));
    Experiment::load(&repo_path("experiments/digits.toml"), &settings).unwrap()
}

const DIGITS_32: ModelShape = ModelShape {
    channels: 1,
    height: 32,
    width: 32,
    classes: 10,
};

fn events_of(run: &Path) -> Vec<Event> {
    kiln::runs::read_events(&run.join("events.jsonl"))
        .unwrap()
        .events
}

/// Every float tensor of a checkpoint's model: the head's two first, then the backbone's.
fn tensors_at(run: &Path, epochs_completed: usize, experiment: &Experiment) -> Vec<Vec<f32>> {
    let (folder, _) = checkpoint::list(&run.join("checkpoints"))
        .into_iter()
        .find(|(_, state)| state.epochs_completed == epochs_completed)
        .unwrap_or_else(|| panic!("a checkpoint after epoch {epochs_completed}"));
    let fresh = Classifier::new(&experiment.model, DIGITS_32, &Device::default());
    let model = checkpoint::load_weights(&folder, fresh).unwrap();
    crate::mixed_precision::weights_of(&model).values
}

#[test]
fn a_backbone_frozen_by_hand_stays_frozen_through_a_resume_and_its_model_is_used() {
    let runs = scratch("freeze-by-hand");
    let experiment = resnet_on_digits(&["train.epochs=3"]);
    let (run, id) = {
        let _guard = training_lock();
        let handle = train::spawn(TrainOptions {
            experiment: experiment.clone(),
            runs_dir: runs.clone(),
        })
        .unwrap();
        // `b` on the screen: applied at the first batch boundary.
        handle
            .commands
            .send(Command::SetBackboneFrozen { frozen: true })
            .unwrap();
        wait_for(&handle.events, "epoch 1", |k| {
            matches!(k, EventKind::Epoch(_))
        });
        crate::common::stop_run(handle);
        let run = crate::common::only_run(&runs);
        let id = run.file_name().unwrap().to_string_lossy().into_owned();
        (run, id)
    };

    // The change is an event at step 0, which the screen replays: the backbone's parameters
    // show as frozen, the head's as training.
    let stopped = events_of(&run);
    let change = stopped
        .iter()
        .find_map(|e| match e.kind {
            EventKind::HyperParameterChanged {
                parameter: HyperParameter::BackboneFrozen,
                from,
                to,
            } => Some((e.step, from, to)),
            _ => None,
        })
        .expect("the freeze is logged");
    assert_eq!(change, (Some(0), 0.0, 1.0));
    let view = RunView::replay(&stopped);
    assert!(view.backbone_frozen);
    assert_eq!(view.changes.last().unwrap().describe(), "backbone frozen");
    let fresh = Classifier::new(&experiment.model, DIGITS_32, &Device::default());
    let backbone = fresh.backbone_params().unwrap();
    assert_eq!(
        view.parameter_split(),
        Some((fresh.trainable_params() - backbone, backbone))
    );

    // Resumed, it stays frozen although the experiment freezes nothing: the head trains on,
    // the backbone is exactly as it was after epoch 1.
    {
        let _guard = training_lock();
        kiln_ok(&["resume", &id, "--headless"], &runs);
    }
    let resumed = events_of(&run);
    let from = resumed
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::FromCheckpoint(from) => Some(from.backbone_frozen),
            _ => None,
        })
        .expect("a resume event");
    assert_eq!(from, Some(true));
    assert_eq!(epoch_history(&resumed).len(), 3);
    let (first, last) = (
        tensors_at(&run, 1, &experiment),
        tensors_at(&run, 3, &experiment),
    );
    assert_ne!(first[..2], last[..2], "the head trains after the resume");
    assert_eq!(first[2..], last[2..], "the backbone stays frozen");

    // The model in use: evaluate scores the best checkpoint as the log did; predict classifies
    // image files; export writes TensorBoard's file; a fork starts from the backbone's weights
    // and follows its own experiment (which freezes nothing).
    let evaluated = kiln_ok(&["evaluate", &id, "--backend", "cpu", "--json"], &runs);
    let report: serde_json::Value = serde_json::from_slice(&evaluated.stdout).unwrap();
    let history = epoch_history(&resumed);
    let best = kiln::diagnose::best_epoch(&history).unwrap();
    let accuracy = report["accuracy"].as_f64().expect("an accuracy");
    assert!(
        (accuracy - history[best - 1].validation_accuracy).abs() < 1e-9,
        "{report}"
    );
    let images = scratch("freeze-by-hand-images");
    let count = crate::model_use::write_validation_pngs(&run, &images);
    let predicted = kiln_ok(
        &[
            "predict".as_ref(),
            id.as_ref(),
            images.as_os_str(),
            "--backend".as_ref(),
            "cpu".as_ref(),
        ],
        &runs,
    );
    assert_eq!(
        String::from_utf8_lossy(&predicted.stdout).lines().count(),
        count
    );
    let board = scratch("freeze-by-hand-board");
    kiln_ok(
        &[
            "export".as_ref(),
            id.as_ref(),
            "--tensorboard".as_ref(),
            board.as_os_str(),
        ],
        &runs,
    );
    assert!(std::fs::read_dir(&board).unwrap().next().is_some());
    {
        let _guard = training_lock();
        kiln_ok(
            &[
                "fork",
                &id,
                "--epoch",
                "1",
                "--set",
                "train.epochs=2",
                "--headless",
            ],
            &runs,
        );
    }
    let fork = std::fs::read_dir(&runs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.is_dir() && path != &run && path.join("events.jsonl").exists())
        .expect("the fork's run folder");
    let forked = events_of(&fork);
    let Some(EventKind::RunStarted(start)) = forked.first().map(|e| &e.kind) else {
        panic!("no start: {forked:?}")
    };
    assert_eq!(start.backbone.as_deref(), Some("resnet18"));
    assert!(!start.backbone_frozen);
    let Some(EventKind::Finished(end)) = forked.last().map(|e| &e.kind) else {
        panic!("the fork did not finish: {:?}", forked.last())
    };
    assert_eq!(end.outcome, Outcome::Completed);
    assert_eq!(epoch_history(&forked).len(), 2);
}

/// One step of plain SGD from the same weights on the same batch (two forks of a checkpoint
/// taken before the first step), with the backbone's rate at 1 and 0.25 times the head's: the
/// backbone's step shrinks in proportion, the head's is the same.
#[test]
fn the_backbone_learns_at_its_own_rate() {
    let settings = |factor: f64| {
        resnet_on_digits(&[
            "train.epochs=1",
            "data.train_images=64",
            "train.optimizer=\"sgd\"",
            "train.momentum=0",
            "train.learning_rate=0.05",
            &format!("model.backbone_lr_factor={factor}"),
        ])
    };
    let runs = scratch("backbone-rate");
    let _guard = training_lock();
    // The parent: a checkpoint of its weights before any step (`c` at the first boundary).
    let parent = train::spawn(TrainOptions {
        experiment: settings(1.0),
        runs_dir: runs.clone(),
    })
    .unwrap();
    parent.commands.send(Command::Checkpoint).unwrap();
    let parent_dir = parent.run.clone();
    let _: Vec<Event> = parent.events.iter().collect();
    parent.join();
    let (start, state) = checkpoint::list(&parent_dir.path.join("checkpoints"))
        .into_iter()
        .find(|(_, state)| state.step == 0)
        .expect("a checkpoint before the first step");
    assert!(state.requested);
    let weights_at = |folder: &Path, experiment: &Experiment| {
        let fresh = Classifier::new(&experiment.model, DIGITS_32, &Device::default());
        crate::mixed_precision::weights_of(&checkpoint::load_weights(folder, fresh).unwrap()).values
    };
    let before = weights_at(&start, &settings(1.0));
    let one_step = |factor: f64| {
        let experiment = settings(factor);
        let restart = kiln::train::Restart {
            checkpoint: start.clone(),
            source: parent_dir.clone(),
            history: Vec::new(),
            parent: Some(kiln::protocol::ParentRun {
                run_id: parent_dir.id.clone(),
                epoch: 0,
            }),
            keeps_rate: false,
        };
        let handle = train::fork(
            TrainOptions {
                experiment: experiment.clone(),
                runs_dir: runs.clone(),
            },
            restart,
        )
        .unwrap();
        let path = handle.run.path.clone();
        let events: Vec<Event> = handle.events.iter().collect();
        handle.join();
        assert_eq!(epoch_history(&events).len(), 1, "{:?}", events.last());
        let Some(EventKind::RunStarted(start)) = events.first().map(|e| &e.kind) else {
            panic!("no start")
        };
        if factor != 1.0 {
            let said = format!("backbone learns at {factor}× the rate");
            assert!(start.controls.contains(&said), "{:?}", start.controls);
        }
        tensors_at(&path, 1, &experiment)
    };
    let (full, quarter) = (one_step(1.0), one_step(0.25));
    // The step each tensor took, from the checkpoint's weights.
    let steps = |after: &[Vec<f32>]| -> Vec<Vec<f32>> {
        after
            .iter()
            .zip(&before)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x - y).collect())
            .collect()
    };
    let norm = |tensors: &[Vec<f32>]| {
        tensors
            .iter()
            .flatten()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let (full, quarter) = (steps(&full), steps(&quarter));
    assert!(norm(&full[..2]) > 0.0, "the head trained");
    assert_eq!(full[..2], quarter[..2], "the head's rate is the same");
    // Each backbone weight steps a quarter as far; batch norm's running statistics, which no
    // rate moves, move the same.
    let (mut scaled, mut same) = (0, 0);
    for (i, (f, q)) in full.iter().zip(&quarter).enumerate().skip(2) {
        let ratio = norm(std::slice::from_ref(q)) / norm(std::slice::from_ref(f));
        if f == q {
            same += 1;
        } else {
            assert!(
                (ratio - 0.25).abs() < 0.005,
                "tensor {i}: step ratio {ratio}"
            );
            scaled += 1;
        }
    }
    // ResNet-18: 20 convolutions, their 20 batch norms' weight and bias; the norms' 40
    // running statistics.
    assert_eq!((scaled, same), (60, 40));
}

/// The case study's pretrained variant, as shipped, on photos of the case study's layout with
/// torchvision's ResNet-18 file (random weights, saved by PyTorch from PyPI): the head is
/// replaced for two classes, the backbone starts frozen, and it trains.
#[test]
fn the_vehicles_variant_fine_tunes_torchvisions_weights() {
    let Some(dir) = crate::backbones::torchvision_reference(
        "the vehicles variant was NOT trained from torchvision's weights",
    ) else {
        return;
    };
    let photos = crate::tricks::vehicles_like(24);
    let experiment = Experiment::load(
        &repo_path("experiments/vehicles-pretrained.toml"),
        &[
            kiln::experiment::string_override("data.dataset", &photos.display().to_string()),
            kiln::experiment::string_override(
                "model.weights",
                &dir.join("resnet18.pth").display().to_string(),
            ),
            "train.epochs=1".into(),
            "train.backend=\"cpu\"".into(),
        ],
    )
    .unwrap();
    let _guard = training_lock();
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: scratch("vehicles-pretrained"),
    })
    .unwrap();
    let events: Vec<Event> = handle.events.iter().collect();
    handle.join();
    let Some(EventKind::RunStarted(start)) = events.first().map(|e| &e.kind) else {
        panic!("no start: {events:?}")
    };
    assert_eq!(start.backbone.as_deref(), Some("resnet18"));
    assert!(start.backbone_frozen);
    assert_eq!(
        start.controls[..3],
        [
            "weights resnet18.pth (100 tensors, a new head for 2 classes)",
            "backbone frozen for 2 epoch(s)",
            "backbone learns at 0.1× the rate",
        ]
    );
    assert_eq!((start.dataset.channels, start.dataset.height), (3, 224));
    assert_eq!(epoch_history(&events).len(), 1, "{:?}", events.last());
}
