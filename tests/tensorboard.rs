//! The TensorBoard export, read back by TensorBoard's own reader (`EventAccumulator`, from the
//! `tensorboard` package that `.ci/run` installs): a client kiln's code did not write.

use std::path::PathBuf;
use std::process::Command;

use kiln::experiment::Experiment;
use kiln::protocol::{Command as TrainCommand, EventKind};
use kiln::train::{self, TrainOptions};

use crate::common::{repo_path, scratch, training_lock};

fn python_with_tensorboard() -> Option<String> {
    crate::common::python_with("tensorboard")
}

#[test]
fn tensorboard_reads_the_exported_run() {
    let Some(python) = python_with_tensorboard() else {
        let message = "TENSORBOARD NOT INSTALLED: the TensorBoard export was NOT checked against \
                       TensorBoard's reader; run .ci/run, or pip install tensorboard and set \
                       KILN_TEST_PYTHON to that python";
        // CI installs it, so there its absence is a failure, not a skip.
        assert!(
            std::env::var_os("KILN_REQUIRE_TENSORBOARD").is_none(),
            "{message}"
        );
        eprintln!("SKIPPED: {message}");
        return;
    };
    let runs = scratch("tensorboard");
    let events: Vec<kiln::protocol::Event> = {
        let _lock = training_lock();
        let experiment = Experiment::load(
            &repo_path("experiments/digits.toml"),
            &[
                "train.epochs=3".to_string(),
                "train.backend=\"cpu\"".to_string(),
            ],
        )
        .unwrap();
        let handle = train::spawn(TrainOptions {
            experiment,
            runs_dir: runs.clone(),
        })
        .unwrap();
        // Applied at the first batch boundary: a change the export must carry as text.
        handle
            .commands
            .send(TrainCommand::SetDropout { value: 0.25 })
            .unwrap();
        let events = handle.events.iter().collect();
        handle.join();
        events
    };
    let run = crate::common::only_run(&runs);
    let out = scratch("tensorboard-out");
    crate::common::kiln_ok(
        &[
            "export".as_ref(),
            "--all".as_ref(),
            "--tensorboard".as_ref(),
            out.as_os_str(),
        ],
        &runs,
    );
    let folder: PathBuf = out.join(run.file_name().unwrap());
    let read = Command::new(&python)
        .arg(repo_path("tests/support/read_tensorboard.py"))
        .arg(&folder)
        .output()
        .unwrap();
    assert!(read.status.success(), "{read:?}");
    let found: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();

    let epochs = kiln::protocol::epoch_history(&events);
    assert_eq!(epochs.len(), 3);
    let scalar = |tag: &str| -> Vec<(i64, f64)> {
        found["scalars"][tag]
            .as_array()
            .unwrap_or_else(|| panic!("no scalar {tag} in {found}"))
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
            .collect()
    };
    let same = |tag: &str, expected: Vec<f64>| {
        let got = scalar(tag);
        assert_eq!(got.len(), expected.len(), "{tag}: {got:?}");
        for ((step, value), (i, want)) in got.iter().zip(expected.iter().enumerate()) {
            assert_eq!(*step, i as i64 + 1, "{tag}");
            // Stored as 32-bit floats (and the JSON between adds a last-digit rounding).
            let want = *want as f32 as f64;
            assert!(
                (value - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{tag} at epoch {step}: {value} vs {want}"
            );
        }
    };
    same("loss/train", epochs.iter().map(|m| m.train_loss).collect());
    same(
        "loss/validation",
        epochs.iter().map(|m| m.validation_loss).collect(),
    );
    same(
        "accuracy/validation",
        epochs.iter().map(|m| m.validation_accuracy).collect(),
    );
    same("gap", epochs.iter().map(|m| m.gap()).collect());
    same("dropout", epochs.iter().map(|m| m.dropout).collect());
    same(
        "learning_rate",
        epochs.iter().map(|m| m.learning_rate).collect(),
    );
    // Per-class recall for each of the ten digits.
    let counts = epochs[2].classes.clone().unwrap();
    let recall_7 = kiln::metrics::scores(&counts)[7].recall;
    assert!((scalar("recall/7")[2].1 - recall_7 as f32 as f64).abs() < 1e-12);
    // Every optimiser step's loss.
    let batches: Vec<(u64, f64)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Batch(b) => Some((e.step.unwrap(), b.loss)),
            _ => None,
        })
        .collect();
    let steps = scalar("loss/train_step");
    assert_eq!(steps.len(), batches.len());
    assert_eq!(steps.last().unwrap().0 as u64, batches.last().unwrap().0);
    let last_loss = batches.last().unwrap().1 as f32 as f64;
    assert!((steps.last().unwrap().1 - last_loss).abs() <= 1e-12 * last_loss.max(1.0));
    // The resolved experiment and the dropout change, as text.
    let experiment = found["texts"]["experiment"][0][1][0].as_str().unwrap();
    assert!(
        experiment.contains("[train]") && experiment.contains("epochs = 3"),
        "{experiment}"
    );
    let change = found["texts"]["changes"][0][1][0].as_str().unwrap();
    assert!(
        change.contains("dropout") && change.contains("0.25"),
        "{change}"
    );
}

/// What TensorBoard's reader finds in `dir`, as the support script prints it.
fn read_board(python: &str, dir: &std::path::Path) -> serde_json::Value {
    let read = Command::new(python)
        .arg(repo_path("tests/support/read_tensorboard.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(read.status.success(), "{read:?}");
    serde_json::from_slice(&read.stdout).unwrap()
}

/// The validation accuracies a reader found, by epoch.
fn validation_accuracy(found: &serde_json::Value) -> Vec<(i64, f64)> {
    found["scalars"]["accuracy/validation"]
        .as_array()
        .unwrap_or_else(|| panic!("no validation accuracy in {found}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// The run directory's own event file, written as the run trains: TensorBoard's reader reads it
/// while the run is still going (paused after its second epoch), and again once it ended.
#[test]
fn tensorboard_reads_the_live_file_while_the_run_trains() {
    let Some(python) = python_with_tensorboard() else {
        assert!(
            std::env::var_os("KILN_REQUIRE_TENSORBOARD").is_none(),
            "TENSORBOARD NOT INSTALLED: the live file was NOT read"
        );
        eprintln!("SKIPPED: TensorBoard is not installed; the live file was not read");
        return;
    };
    let _lock = training_lock();
    let experiment = Experiment::load(
        &repo_path("experiments/digits.toml"),
        &[
            "train.epochs=6".to_string(),
            "train.backend=\"cpu\"".to_string(),
        ],
    )
    .unwrap();
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: scratch("tensorboard-live"),
    })
    .unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.extend(crate::common::wait_for(&handle.events, "an epoch", |k| {
            matches!(k, kiln::protocol::EventKind::Epoch(_))
        }));
    }
    handle.commands.send(TrainCommand::Pause).unwrap();
    seen.extend(crate::common::wait_for(&handle.events, "the pause", |k| {
        matches!(k, kiln::protocol::EventKind::Paused { .. })
    }));
    let live = read_board(&python, &handle.run.path);
    let logged = kiln::protocol::epoch_history(&seen);
    let found = validation_accuracy(&live);
    assert_eq!(found.len(), 2, "two epochs while it trains: {found:?}");
    for ((step, value), (i, m)) in found.iter().zip(logged.iter().enumerate()) {
        assert_eq!(*step, i as i64 + 1);
        assert!((value - m.validation_accuracy as f32 as f64).abs() < 1e-9);
    }
    assert!(
        live["texts"]["experiment"].to_string().contains("digits"),
        "{live}"
    );
    assert!(
        live["scalars"]["loss/train_step"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );

    handle.commands.send(TrainCommand::Stop).unwrap();
    let path = handle.run.path.clone();
    let rest: Vec<_> = handle.events.iter().collect();
    handle.join();
    let epochs = kiln::protocol::epoch_history(seen.iter().chain(&rest)).len();
    assert_eq!(
        validation_accuracy(&read_board(&python, &path)).len(),
        epochs
    );
}
