//! The training thread driven from a test, with no terminal: learning, determinism, commands,
//! checkpoints and the run log.

use std::time::Duration;

use kiln::data::{self, Normalizer, stratified_split};
use kiln::experiment::Experiment;
use kiln::model::ModelShape;
use kiln::protocol::{
    Command, EpochMetrics, Event, EventKind, HyperParameter, Outcome, PauseReason,
};
use kiln::runs::read_events;
use kiln::train::{self, TrainOptions, TrainerHandle, checkpoint, evaluate};

use crate::common::{repo_path, scratch, training_lock, wait_for};

fn digits(overrides: &[&str]) -> Experiment {
    let mut all = vec!["train.backend=cpu".to_string()];
    all.extend(overrides.iter().map(|s| s.to_string()));
    Experiment::load(&repo_path("experiments/digits.toml"), &all).unwrap()
}

fn start(experiment: Experiment) -> TrainerHandle {
    train::spawn(TrainOptions {
        experiment,
        runs_dir: scratch("runs"),
    })
    .unwrap()
}

/// Collects every event until the channel closes (the thread has ended).
fn drain(handle: TrainerHandle) -> (Vec<Event>, std::path::PathBuf) {
    let events: Vec<Event> = handle.events.iter().collect();
    let path = handle.run.path.clone();
    handle.join();
    (events, path)
}

fn epochs(events: &[Event]) -> Vec<EpochMetrics> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Epoch(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// CPU time (clock ticks) used so far by this process's threads with these names, and how many
/// such threads there are; `None` where /proc is not available.
fn cpu_ticks(names: &[&str]) -> Option<(usize, u64)> {
    let mut total = 0;
    let mut found = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if !names.contains(&name.trim()) {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        // Fields after the parenthesised name: state is 3rd, utime 14th, stime 15th.
        let after_name = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        total += fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
        found += 1;
    }
    Some((found, total))
}

fn is_batch(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Batch(_))
}

#[test]
fn digits_on_cpu_reaches_90_percent_within_5_epochs_and_logs_everything() {
    let _guard = training_lock();
    let experiment = digits(&[]);
    assert!(experiment.train.epochs <= 5);
    let (events, run_dir) = drain(start(experiment));

    let metrics = epochs(&events);
    assert_eq!(metrics.len(), 5, "{events:#?}");
    let best = metrics
        .iter()
        .map(|m| m.validation_accuracy)
        .fold(0.0, f64::max);
    assert!(
        best >= 0.90,
        "best validation accuracy {best}: {metrics:#?}"
    );
    assert!(metrics[4].train_loss < metrics[0].train_loss);

    let EventKind::RunStarted(started) = &events[0].kind else {
        panic!("first event is {:?}", events[0]);
    };
    assert_eq!(started.backend.name, "flex");
    assert_eq!(
        started.dataset.train_images + started.dataset.validation_images,
        1797
    );
    let batches = events.iter().filter(|e| is_batch(&e.kind)).count();
    assert_eq!(batches, 5 * started.batches_per_epoch);
    let Some(EventKind::Finished(end)) = events.last().map(|e| &e.kind) else {
        panic!("last event is {:?}", events.last());
    };
    assert_eq!(end.outcome, Outcome::Completed);
    assert_eq!(end.epochs_completed, 5);
    assert_eq!(end.best_validation_accuracy, Some(best));
    // Each epoch event is followed by a sample of the machine: this process's memory, its CPU
    // and the share of time spent waiting for the loader (no GPU on the CPU backend's runs
    // where no NVIDIA driver is installed).
    for (i, event) in events.iter().enumerate() {
        if matches!(event.kind, EventKind::Epoch(_)) {
            let Some(EventKind::Machine(sample)) = events.get(i + 1).map(|e| &e.kind) else {
                panic!("no machine sample after {event:?}");
            };
            assert!(sample.memory_mb > 1.0, "{sample:?}");
            assert!(sample.cpu_percent.is_finite() && sample.cpu_percent >= 0.0);
            assert!((0.0..=1.0).contains(&sample.loader_wait), "{sample:?}");
        }
    }

    // The log holds exactly what the channel delivered, byte for byte, and reads back whole.
    let text = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let sent: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(lines, sent);
    let log = read_events(&run_dir.join("events.jsonl")).unwrap();
    assert_eq!(log.events.len(), events.len());
    assert_eq!(log.skipped_lines, 0);
    let saved = std::fs::read_to_string(run_dir.join("experiment.toml")).unwrap();
    assert_eq!(Experiment::from_toml(&saved).unwrap(), digits(&[]));
}

#[test]
fn same_seed_gives_same_first_epoch_and_another_seed_does_not() {
    let _guard = training_lock();
    let first_epoch = |seed: &str| {
        let (events, _) = drain(start(digits(&["train.epochs=1", seed])));
        epochs(&events)[0].clone()
    };
    let a = first_epoch("train.seed=11");
    let b = first_epoch("train.seed=11");
    let c = first_epoch("train.seed=12");
    assert!((a.train_loss - b.train_loss).abs() < 1e-6, "{a:?} vs {b:?}");
    assert!(
        (a.validation_loss - b.validation_loss).abs() < 1e-6,
        "{a:?} vs {b:?}"
    );
    assert!(
        (a.train_loss - c.train_loss).abs() > 1e-6,
        "seeds 11 and 12 agree: {a:?}"
    );
}

#[test]
fn pause_stops_batches_until_resume_and_stop_ends_cleanly() {
    let _guard = training_lock();
    let handle = start(digits(&["train.epochs=50"]));
    wait_for(&handle.events, "first batch", is_batch);
    handle.commands.send(Command::Pause).unwrap();
    wait_for(&handle.events, "paused", |k| {
        matches!(
            k,
            EventKind::Paused {
                reason: PauseReason::Requested
            }
        )
    });
    // While paused nothing trains: no batch arrives, and the trainer and loader threads sleep.
    let threads = ["kiln-trainer", "kiln-loader"];
    let ticks_before = cpu_ticks(&threads);
    let quiet: Vec<Event> =
        std::iter::from_fn(|| handle.events.recv_timeout(Duration::from_millis(700)).ok())
            .collect();
    assert!(quiet.is_empty(), "events while paused: {quiet:#?}");
    if let (Some((found, before)), Some((_, after))) = (ticks_before, cpu_ticks(&threads)) {
        // Threads the trainer starts (the CPU backend's workers) inherit its name, so ≥ 2.
        assert!(found >= 2, "trainer and loader threads by name: {found}");
        assert!(
            after - before <= 2,
            "paused threads used {} CPU ticks",
            after - before
        );
    }

    handle.commands.send(Command::Resume).unwrap();
    let resumed = wait_for(&handle.events, "a batch after resuming", is_batch);
    assert!(
        matches!(resumed[0].kind, EventKind::Resumed),
        "{resumed:#?}"
    );

    handle.commands.send(Command::Stop).unwrap();
    let run_dir = handle.run.path.clone();
    let (rest, _) = drain(handle);
    let kinds: Vec<&EventKind> = rest.iter().map(|e| &e.kind).collect();
    let n = kinds.len();
    assert!(n >= 2, "{rest:#?}");
    assert!(
        matches!(kinds[n - 2], EventKind::CheckpointWritten { .. }),
        "{rest:#?}"
    );
    let EventKind::Finished(end) = kinds[n - 1] else {
        panic!("last event is {:?}", kinds[n - 1]);
    };
    assert_eq!(end.outcome, Outcome::Stopped);
    assert!(end.epochs_completed < 50);
    let log = read_events(&run_dir.join("events.jsonl")).unwrap();
    assert!(matches!(
        log.events.last().unwrap().kind,
        EventKind::Finished(_)
    ));
}

#[test]
fn set_dropout_applies_at_the_next_batch_and_is_logged() {
    let _guard = training_lock();
    let handle = start(digits(&["train.epochs=50"]));
    wait_for(&handle.events, "first batch", is_batch);
    handle
        .commands
        .send(Command::SetDropout { value: 0.4 })
        .unwrap();
    let seen = wait_for(&handle.events, "the dropout change", |k| {
        matches!(k, EventKind::HyperParameterChanged { .. })
    });
    let change = seen.last().unwrap().clone();
    let EventKind::HyperParameterChanged {
        parameter,
        from,
        to,
    } = change.kind
    else {
        unreachable!("matched above")
    };
    assert_eq!((parameter, from, to), (HyperParameter::Dropout, 0.0, 0.4));
    let step = change.step.unwrap();
    let next = wait_for(&handle.events, "the next batch", is_batch);
    assert_eq!(
        next.last().unwrap().step,
        Some(step + 1),
        "applied before the next step"
    );
    let until_epoch = wait_for(&handle.events, "an epoch", |k| {
        matches!(k, EventKind::Epoch(_))
    });
    let Some(EventKind::Epoch(metrics)) = until_epoch.last().map(|e| &e.kind) else {
        unreachable!("matched above")
    };
    assert_eq!(metrics.dropout, 0.4);

    handle
        .commands
        .send(Command::SetDropout { value: 1.5 })
        .unwrap();
    let rejected = wait_for(&handle.events, "a warning", |k| {
        matches!(k, EventKind::Warning { .. })
    });
    let EventKind::Warning { message } = &rejected.last().unwrap().kind else {
        unreachable!("matched above")
    };
    assert!(message.contains("dropout 1.5 rejected"), "{message}");

    handle.commands.send(Command::Stop).unwrap();
    let (_, run_dir) = drain(handle);
    let log = read_events(&run_dir.join("events.jsonl")).unwrap();
    assert!(
        log.events.contains(&change),
        "the change is in the log at step {step}"
    );
}

#[test]
fn checkpoints_load_back_into_the_same_model() {
    let _guard = training_lock();
    let experiment = digits(&["train.epochs=2", "train.checkpoint_every=0"]);
    let handle = start(experiment.clone());
    wait_for(&handle.events, "first batch", is_batch);
    handle.commands.send(Command::Checkpoint).unwrap();
    let (events, run_dir) = drain(handle);

    let written: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CheckpointWritten { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        written.len(),
        2,
        "one asked for, one at the end: {written:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The final checkpoint, evaluated again, gives the last epoch's validation loss.
    let final_dir = run_dir.join(written[1]);
    let state = checkpoint::load_state(&final_dir).unwrap();
    assert_eq!(state.epochs_completed, 2);
    let evaluation = evaluate_checkpoint(&experiment, &final_dir);
    let (loss, accuracy) = (evaluation.loss, evaluation.accuracy);
    let last = epochs(&events).pop().unwrap();
    // The per-class counts the epoch logged are the ones the restored weights give.
    assert_eq!(last.classes.as_ref(), Some(&evaluation.classes));
    assert!(
        (loss - last.validation_loss).abs() < 1e-4,
        "{loss} vs {last:?}"
    );
    assert!(
        (accuracy - last.validation_accuracy).abs() < 1e-9,
        "{accuracy} vs {last:?}"
    );

    // The mid-run checkpoint is complete too, optimiser state included.
    let early = run_dir.join(written[0]);
    let device = burn::tensor::Device::flex();
    let shape = crate::common::digits_shape();
    assert!(checkpoint::load_model(&early, &experiment.model, shape, &device).is_ok());
    let optimizer = burn::optim::AdamConfig::new().init();
    assert!(checkpoint::load_optimizer(&early, optimizer).is_ok());
}

#[test]
fn divergence_pauses_the_run_instead_of_crashing() {
    let _guard = training_lock();
    let handle = start(digits(&["train.epochs=50", "train.learning_rate=1e30"]));
    let seen = wait_for(&handle.events, "divergence", |k| {
        matches!(k, EventKind::Diverged { .. })
    });
    let EventKind::Diverged { loss } = &seen.last().unwrap().kind else {
        unreachable!("matched above")
    };
    assert!(["NaN", "inf", "-inf"].contains(&loss.as_str()), "{loss}");
    let next = handle.events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        matches!(
            next.kind,
            EventKind::Paused {
                reason: PauseReason::Diverged
            }
        ),
        "{next:?}"
    );
    handle
        .commands
        .send(Command::SetLearningRate { value: 1e-3 })
        .unwrap();
    handle.commands.send(Command::Stop).unwrap();
    let (rest, _) = drain(handle);
    assert!(rest.iter().any(|e| matches!(
        e.kind,
        EventKind::HyperParameterChanged {
            parameter: HyperParameter::LearningRate,
            to,
            ..
        } if to == 1e-3
    )));
    assert!(matches!(rest.last().unwrap().kind, EventKind::Finished(_)));
}

#[test]
fn unusable_dataset_ends_in_a_failed_event() {
    let _guard = training_lock();
    let root = scratch("bad-data");
    std::fs::create_dir_all(root.join("only")).unwrap();
    std::fs::write(root.join("only/x.png"), "garbage").unwrap();
    let experiment = digits(&[&format!("data.dataset={}", root.display())]);
    let (events, _) = drain(start(experiment));
    let Some(EventKind::Failed { error }) = events.last().map(|e| &e.kind) else {
        panic!("{events:#?}");
    };
    assert!(
        error.contains("class \"only\" has no readable images"),
        "{error}"
    );
}

#[test]
fn the_machine_sampler_measures_this_process_and_the_loader_wait() {
    let mut sampler = kiln::machine::Sampler::new();
    // Burn some CPU time (the kernel counts it in 10 ms ticks).
    let started = std::time::Instant::now();
    let mut x = 0u64;
    while started.elapsed() < std::time::Duration::from_millis(200) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let busy = sampler.sample();
    assert!(busy.cpu_percent > 0.0, "{busy:?}");
    assert!(busy.memory_mb > 1.0, "{busy:?}");
    assert_eq!(busy.loader_wait, 0.0, "nothing waited");
    // A wait longer than the interval counts as the whole of it.
    sampler.waited_for_loader(std::time::Duration::from_secs(3600));
    assert_eq!(sampler.sample().loader_wait, 1.0);
    // NVML is loaded only where an NVIDIA driver is installed; without one, no GPU and no error.
    let driver = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]
        .iter()
        .any(|dir| std::path::Path::new(dir).join("libnvidia-ml.so.1").exists());
    if !driver {
        assert_eq!(kiln::machine::gpu_sample(), None);
    }
}

/// The trainer reads a batch's loss after the next batch's step is queued. A non-finite loss
/// found that late still puts back the model and the optimiser from before its step: with one
/// batch an epoch, the checkpoint after the diverging epoch holds exactly the first epoch's
/// weights and optimiser state.
#[test]
fn a_late_non_finite_loss_puts_back_the_model_and_optimiser() {
    let _guard = training_lock();
    let experiment = digits(&[
        "train.epochs=50",
        "train.learning_rate=1e30",
        "data.train_images=32",
    ]);
    let handle = start(experiment.clone());
    let seen = wait_for(
        &handle.events,
        "the diverging epoch's checkpoint",
        |k| matches!(k, EventKind::CheckpointWritten { path } if path.contains("epoch-0002")),
    );
    let batches: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Batch(_)))
        .collect();
    assert_eq!(batches.len(), 1, "only the first batch trained: {seen:#?}");
    let diverged = seen
        .iter()
        .find(|e| matches!(e.kind, EventKind::Diverged { .. }))
        .expect("the second batch diverged");
    assert_eq!(diverged.step, Some(1));
    let run = handle.run.path.clone();
    crate::common::stop_run(handle);

    let folders = checkpoint::list(&run.join("checkpoints"));
    let folder = |epoch: usize| {
        folders
            .iter()
            .find(|(_, state)| state.epochs_completed == epoch)
            .map(|(path, state)| (path.clone(), state.clone()))
            .unwrap_or_else(|| panic!("no checkpoint of epoch {epoch}: {folders:?}"))
    };
    let ((first, first_state), (second, second_state)) = (folder(1), folder(2));
    assert_eq!((first_state.step, second_state.step), (1, 1));
    let shape = crate::common::digits_shape();
    let device = burn::tensor::Device::flex();
    let load = |path: &std::path::Path| {
        let model = checkpoint::load_model(path, &experiment.model, shape, &device).unwrap();
        crate::mixed_precision::weights_of(&model)
    };
    let (before, after) = (load(&first), load(&second));
    assert!(after.all_finite(), "the diverged step's weights were kept");
    assert_eq!(before.values, after.values);
    let optimizer = |path: &std::path::Path| std::fs::read(path.join(checkpoint::OPTIMIZER_FILE));
    assert_eq!(
        optimizer(&first).unwrap(),
        optimizer(&second).unwrap(),
        "the optimiser state is the first step's"
    );
}

/// With several batches an epoch, the batch queued after the diverging one started from bad
/// weights: it is dropped too, and nothing of either reaches the log but the divergence.
#[test]
fn the_batch_queued_after_a_non_finite_loss_is_dropped() {
    let _guard = training_lock();
    let handle = start(digits(&[
        "train.epochs=50",
        "train.learning_rate=1e30",
        "data.train_images=96",
    ]));
    let seen = wait_for(&handle.events, "the first epoch's end", |k| {
        matches!(k, EventKind::Epoch(_))
    });
    let kinds: Vec<String> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Batch(b) => Some(format!("batch {}", b.batch)),
            EventKind::Diverged { .. } => Some("diverged".into()),
            EventKind::Paused { reason } => Some(format!("paused {reason:?}")),
            EventKind::Epoch(_) => Some("epoch".into()),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        ["batch 1", "diverged", "paused Diverged", "epoch"],
        "{seen:#?}"
    );
    let EventKind::Epoch(metrics) = &seen.last().unwrap().kind else {
        unreachable!("waited for it")
    };
    assert!(metrics.train_loss.is_finite(), "{metrics:?}");
    crate::common::stop_run(handle);
}

/// Reading each loss one batch late keeps the log in order: every epoch's batches 1..=n, each
/// one step on, then its epoch event.
#[test]
fn late_reads_keep_batches_and_epochs_in_order() {
    let _guard = training_lock();
    let (events, _) = drain(start(digits(&["train.epochs=2", "data.train_images=160"])));
    let mut expected_batch = 1;
    let mut last_step = 0;
    let mut epochs_seen = 0;
    for event in &events {
        match &event.kind {
            EventKind::Batch(b) => {
                assert_eq!(b.batch, expected_batch, "{event:?}");
                assert_eq!(event.step, Some(last_step + 1), "{event:?}");
                assert_eq!(event.epoch, Some(epochs_seen + 1), "{event:?}");
                expected_batch += 1;
                last_step += 1;
            }
            EventKind::Epoch(_) => {
                assert_eq!(
                    expected_batch, 6,
                    "all 5 batches before the epoch: {events:#?}"
                );
                epochs_seen += 1;
                expected_batch = 1;
            }
            _ => {}
        }
    }
    assert_eq!((epochs_seen, last_step), (2, 10));
}

/// The model saved in `checkpoint`, evaluated again on the experiment's validation split.
fn evaluate_checkpoint(
    experiment: &Experiment,
    checkpoint: &std::path::Path,
) -> kiln::train::eval::Evaluation {
    let dataset = data::load(&experiment.data).unwrap();
    let split = stratified_split(
        &dataset.labels,
        dataset.classes.len(),
        experiment.data.validation_fraction,
        experiment.data.train_images,
        experiment.train.seed,
    );
    let normalizer = Normalizer::fit(&dataset, &split.train);
    let images = normalizer.images(&dataset, &split.validation);
    let labels: Vec<i64> = split
        .validation
        .iter()
        .map(|&i| dataset.labels[i] as i64)
        .collect();
    let shape = ModelShape {
        channels: dataset.channels,
        height: dataset.height,
        width: dataset.width,
        classes: dataset.classes.len(),
    };
    let device = burn::tensor::Device::flex();
    let model = checkpoint::load_model(checkpoint, &experiment.model, shape, &device).unwrap();
    evaluate(
        &model,
        &device,
        &images,
        &labels,
        dataset.image_len(),
        shape,
    )
    .unwrap()
}

/// A run that overfits stops before its last epoch once its validation loss has gone
/// `patience` epochs without improving, and its model (the final checkpoint) is the best
/// epoch's: evaluated again, it scores what that epoch logged.
#[test]
fn early_stopping_stops_an_overfitting_run_and_keeps_its_best_epoch() {
    let _guard = training_lock();
    let experiment = Experiment::load(
        &repo_path("experiments/baseline.toml"),
        &[
            "train.backend=\"cpu\"".into(),
            "train.epochs=40".into(),
            "train.best_metric=\"val_loss\"".into(),
            "early_stopping.patience=3".into(),
        ],
    )
    .unwrap();
    let (events, run_dir) = drain(start(experiment.clone()));
    let Some(EventKind::Finished(end)) = events.last().map(|e| &e.kind) else {
        panic!("{:?}", events.last())
    };
    assert_eq!(end.outcome, Outcome::EarlyStopped, "{end:?}");
    let history = epochs(&events);
    assert!(history.len() < 40, "stopped at epoch {}", history.len());
    let best =
        kiln::diagnose::best_epoch_by(&history, kiln::experiment::BestMetric::ValLoss).unwrap();
    assert_eq!(end.restored_epoch, Some(best));
    assert_eq!(history.len(), best + 3, "three epochs without improvement");
    let (last, _) = checkpoint::list(&run_dir.join("checkpoints"))
        .pop()
        .unwrap();
    let evaluation = evaluate_checkpoint(&experiment, &last);
    let logged = &history[best - 1];
    assert!(
        (evaluation.accuracy - logged.validation_accuracy).abs() < 1e-9,
        "{} against epoch {best}'s {}",
        evaluation.accuracy,
        logged.validation_accuracy
    );
    assert!((evaluation.loss - logged.validation_loss).abs() < 1e-4);
}
