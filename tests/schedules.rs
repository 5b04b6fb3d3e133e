//! Learning-rate schedules in training: each epoch's rate is the schedule's at its last step; a
//! live change scales the schedule from its step on (it is not overwritten at the next step),
//! and survives a resume and a fork exactly.

use kiln::experiment::Experiment;
use kiln::protocol::{Command, Event, EventKind, HyperParameter, epoch_history};
use kiln::runs::read_events;
use kiln::schedule::{At, Plan};
use kiln::train::{self, ForkRequest, TrainOptions};

use crate::common::{repo_path, scratch, training_lock, wait_for};

/// digits, 5 batches an epoch, a cosine with a warm-up epoch.
fn cosine_digits(epochs: usize) -> Experiment {
    let overrides: Vec<String> = [
        "train.backend=\"cpu\"",
        &format!("train.epochs={epochs}"),
        "data.train_images=160",
        "train.learning_rate=4e-3",
        "schedule.kind=\"cosine\"",
        "schedule.warmup_epochs=1",
        "schedule.min_lr=1e-4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Experiment::load(&repo_path("experiments/digits.toml"), &overrides).unwrap()
}

fn plan(experiment: &Experiment) -> Plan<'_> {
    Plan {
        schedule: &experiment.schedule,
        base: experiment.train.learning_rate,
        batches_per_epoch: 5,
        epochs: experiment.train.epochs,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs()
}

/// The live change in `events`: its epoch, the batch it applies from, and its new rate.
fn live_change(events: &[Event]) -> (usize, usize, f64) {
    events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::HyperParameterChanged {
                parameter: HyperParameter::LearningRate,
                to,
                ..
            } => {
                let epoch = e.epoch.unwrap();
                let batch = e.step.unwrap() as usize - (epoch - 1) * 5 + 1;
                Some((epoch, batch, to))
            }
            _ => None,
        })
        .expect("the live change is logged")
}

#[test]
fn a_live_change_scales_the_schedule_and_survives_resume_and_fork() {
    let _guard = training_lock();
    let experiment = cosine_digits(8);
    let runs = scratch("schedules");
    let handle = train::spawn(TrainOptions {
        experiment: experiment.clone(),
        runs_dir: runs.clone(),
    })
    .unwrap();
    wait_for(&handle.events, "epoch 2", |k| {
        matches!(k, EventKind::Epoch(_))
    });
    wait_for(&handle.events, "epoch 2", |k| {
        matches!(k, EventKind::Epoch(_))
    });
    handle
        .commands
        .send(Command::SetLearningRate { value: 1e-3 })
        .unwrap();
    wait_for(&handle.events, "the change", |k| {
        matches!(k, EventKind::HyperParameterChanged { .. })
    });
    wait_for(&handle.events, "an epoch after it", |k| {
        matches!(k, EventKind::Epoch(_))
    });
    handle.commands.send(Command::Stop).unwrap();
    let path = handle.run.path.clone();
    let _: Vec<Event> = handle.events.iter().collect();
    handle.join();

    // Resume to the end.
    let resumption = train::plan_resume(path.clone(), None).unwrap();
    let resumed = train::resume(resumption.experiment, resumption.run, resumption.restart).unwrap();
    let _: Vec<Event> = resumed.events.iter().collect();
    resumed.join();

    let events = read_events(&path.join("events.jsonl")).unwrap().events;
    let history = epoch_history(&events);
    assert_eq!(history.len(), 8, "the resumed run finished");
    let (changed_epoch, changed_batch, to) = live_change(&events);
    let losses: Vec<f64> = history.iter().map(|m| m.validation_loss).collect();
    let p = plan(&experiment);
    let scale = to
        / p.rate(
            At {
                epoch: changed_epoch,
                batch: changed_batch,
            },
            &losses,
        );
    assert!(scale < 1.0, "the change lowered the rate: {scale}");
    for (i, metrics) in history.iter().enumerate() {
        let epoch = i + 1;
        let scheduled = p.rate(At { epoch, batch: 5 }, &losses[..i]);
        let expected = if epoch >= changed_epoch {
            scale * scheduled
        } else {
            scheduled
        };
        assert!(
            close(metrics.learning_rate, expected),
            "epoch {epoch}: {} against {expected} (scale {scale})",
            metrics.learning_rate
        );
    }

    // A fork keeps the parent's scaled schedule unless it sets the rate or the schedule.
    let fork = train::plan_fork(
        path,
        &ForkRequest {
            epoch: Some(4),
            overrides: vec!["model.dropout=0.1".into(), "train.epochs=6".into()],
            name: None,
            backend: None,
        },
    )
    .unwrap();
    let forked_experiment = fork.experiment.clone();
    let handle = train::fork(
        TrainOptions {
            experiment: fork.experiment,
            runs_dir: runs,
        },
        fork.restart,
    )
    .unwrap();
    let fork_path = handle.run.path.clone();
    let _: Vec<Event> = handle.events.iter().collect();
    handle.join();
    let forked = epoch_history(&read_events(&fork_path.join("events.jsonl")).unwrap().events);
    assert_eq!(forked.len(), 6);
    let p = plan(&forked_experiment);
    let fork_losses: Vec<f64> = forked.iter().map(|m| m.validation_loss).collect();
    for epoch in 5..=6 {
        let expected = scale * p.rate(At { epoch, batch: 5 }, &fork_losses[..epoch - 1]);
        assert!(
            close(forked[epoch - 1].learning_rate, expected),
            "fork epoch {epoch}: {} against {expected}",
            forked[epoch - 1].learning_rate
        );
    }
}
