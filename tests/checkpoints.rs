//! Replacing a checkpoint is crash-safe: stopped after any step of the write, as a killed
//! process would be, the folder still holds one complete checkpoint of that name (the old or
//! the new), and a resume's tidy-up leaves exactly that one.

use burn::optim::AdamConfig;
use kiln::experiment::ModelConfig;
use kiln::model::Classifier;
use kiln::train::checkpoint::{self, CheckpointState, WriteStep};

use crate::common::scratch;

fn state(learning_rate: f64) -> CheckpointState {
    CheckpointState {
        epochs_completed: 2,
        epoch: 2,
        batches_done: 0,
        step: 40,
        learning_rate,
        lr_scale: Some(1.0),
        dropout: 0.1,
        backbone_frozen_by_hand: None,
        requested: false,
    }
}

fn folders(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_crash_at_any_step_of_a_replace_leaves_one_complete_checkpoint() {
    let config = ModelConfig::default();
    let shape = crate::common::digits_shape();
    let device = burn::tensor::Device::flex();
    let model = Classifier::new(&config, shape, &device);
    let optimizer = AdamConfig::new().init();
    for step in [
        WriteStep::Written,
        WriteStep::OldMovedAside,
        WriteStep::Renamed,
    ] {
        let dir = scratch("checkpoint-crash");
        let old = checkpoint::write(&dir, &model, &optimizer, &state(1e-3)).unwrap();
        let name = old.file_name().unwrap().to_string_lossy().into_owned();
        checkpoint::write_until(&dir, &model, &optimizer, &state(2e-3), Some(step)).unwrap();

        // What a resume or fork would find right after the crash.
        let found = checkpoint::list(&dir);
        assert_eq!(found.len(), 1, "{step:?}: {:?}", folders(&dir));
        let (path, saved) = &found[0];
        assert!(
            [1e-3, 2e-3].contains(&saved.learning_rate),
            "{step:?}: {saved:?}"
        );
        let fresh = Classifier::new(&config, shape, &device);
        assert!(
            checkpoint::load_weights(path, fresh).is_ok(),
            "{step:?}: the checkpoint found is complete"
        );

        // The tidy-up on resume leaves that one checkpoint under its own name, nothing else.
        checkpoint::remove_partial(&dir);
        assert_eq!(folders(&dir), vec![name.clone()], "{step:?}");
        let (_, tidied) = &checkpoint::list(&dir)[0];
        assert_eq!(
            tidied, saved,
            "{step:?}: the same checkpoint as before the tidy-up"
        );
    }

    // Uninterrupted, the replacement wins and nothing is left beside it.
    let dir = scratch("checkpoint-replace");
    checkpoint::write(&dir, &model, &optimizer, &state(1e-3)).unwrap();
    let path = checkpoint::write(&dir, &model, &optimizer, &state(2e-3)).unwrap();
    assert_eq!(folders(&dir).len(), 1);
    assert_eq!(checkpoint::load_state(&path).unwrap().learning_rate, 2e-3);
}

fn at_epoch(epoch: usize, step: u64, requested: bool) -> (std::path::PathBuf, CheckpointState) {
    let name = format!("epoch-{epoch:04}-step-{step:07}");
    let state = CheckpointState {
        epochs_completed: epoch,
        epoch,
        batches_done: 0,
        step,
        learning_rate: 1e-3,
        lr_scale: None,
        dropout: 0.0,
        backbone_frozen_by_hand: None,
        requested,
    };
    (std::path::PathBuf::from("checkpoints").join(name), state)
}

#[test]
fn retention_keeps_the_newest_and_what_must_stay() {
    use kiln::train::checkpoint::{Retention, to_prune};
    // Epochs 1–6 at their ends, and one taken by hand at epoch 2.
    let mut found: Vec<_> = (1..=6).map(|e| at_epoch(e, e as u64 * 10, false)).collect();
    found.insert(2, at_epoch(2, 25, true));
    let name = |path: &std::path::PathBuf| path.file_name().unwrap().to_string_lossy().into_owned();
    let pruned = |retention: &Retention| -> Vec<String> {
        to_prune(&found, retention).iter().map(name).collect()
    };
    let newest_two = Retention {
        newest: 2,
        ..Retention::default()
    };
    assert_eq!(
        pruned(&newest_two),
        [
            "epoch-0001-step-0000010",
            "epoch-0002-step-0000020",
            "epoch-0003-step-0000030",
            "epoch-0004-step-0000040"
        ],
        "the newest two routine ones and the one taken by hand stay"
    );
    let with_best_and_fork = Retention {
        newest: 2,
        epochs: [1, 3].into(),
        names: ["epoch-0004-step-0000040".to_string()].into(),
    };
    assert_eq!(pruned(&with_best_and_fork), ["epoch-0002-step-0000020"]);
    assert!(pruned(&Retention::default()).is_empty(), "0 keeps them all");
}

#[test]
fn a_run_keeps_its_newest_checkpoints_and_prune_applies_the_policy_later() {
    let _guard = crate::common::training_lock();
    let runs = scratch("retention");
    let status = crate::common::train_digits("--headless", 5, &runs)
        .args(["--set", "train.keep_checkpoints=2"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let run = crate::common::only_run(&runs);
    let checkpoints = run.join("checkpoints");
    let kept = checkpoint::list(&checkpoints);
    let epochs: Vec<usize> = kept.iter().map(|(_, s)| s.epochs_completed).collect();
    let best = kiln::runs::open_run(&run)
        .unwrap()
        .summary
        .best_epoch
        .unwrap();
    // The newest two (epochs 4 and 5) and the best epoch's, which may be one of them.
    assert!(epochs.ends_with(&[4, 5]), "{epochs:?}");
    assert!(
        epochs.contains(&best),
        "the best epoch {best} is kept: {epochs:?}"
    );
    assert_eq!(epochs.len(), if best >= 4 { 2 } else { 3 }, "{epochs:?}");

    let kiln = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .arg("--runs-dir")
            .arg(&runs)
            .output()
            .unwrap()
    };
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    // Keeping one: the newest (epoch 5) and the best epoch's stay.
    let mut expected: Vec<usize> = vec![best, 5];
    expected.dedup();
    let removed = epochs.len() - expected.len();
    // Without a terminal and without --yes, it says what it would do and removes nothing.
    let asked = kiln(&["prune", &id, "--keep", "1"]);
    assert_eq!(asked.status.code(), Some(2), "{asked:?}");
    let said = String::from_utf8_lossy(&asked.stdout);
    assert!(
        said.contains(&format!("remove {removed} checkpoint(s)")),
        "{said}"
    );
    assert_eq!(checkpoint::list(&checkpoints).len(), epochs.len());
    let pruned = kiln(&["prune", &id, "--keep", "1", "--yes"]);
    assert!(pruned.status.success(), "{pruned:?}");
    let left: Vec<usize> = checkpoint::list(&checkpoints)
        .iter()
        .map(|(_, s)| s.epochs_completed)
        .collect();
    assert_eq!(left, expected);
    // A fork from a pruned epoch says which epochs are left.
    let gone = (1..=5).find(|e| !expected.contains(e)).unwrap();
    let refused = kiln(&["fork", &id, "--epoch", &gone.to_string(), "--headless"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("it has checkpoints after epoch(s)"),
        "{stderr}"
    );
}

#[test]
fn a_process_killed_while_replacing_a_checkpoint_leaves_one_complete_checkpoint() {
    use std::io::Write;
    let _guard = crate::common::training_lock();
    for step in [
        WriteStep::Written,
        WriteStep::OldMovedAside,
        WriteStep::Renamed,
    ] {
        let runs = scratch("crash-drill");
        let mut child = crate::common::train_digits("--headless", 500, &runs)
            .env(checkpoint::CRASH_AFTER_ENV, step.name())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let run = crate::common::only_run_eventually(&runs);
        let socket = run.join(kiln::control::SOCKET_FILE);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let stream = loop {
            if let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) {
                break stream;
            }
            assert!(std::time::Instant::now() < deadline, "no control socket");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut writer = stream.try_clone().unwrap();
        // Paused, two checkpoints by hand at the same step: the second replaces the first,
        // and the process aborts right after `step` of that replacement.
        for command in ["pause", "checkpoint", "checkpoint"] {
            writeln!(writer, "{{\"command\":\"{command}\"}}").unwrap();
        }
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(6),
            "{step:?}: the drill aborted the process: {status:?}"
        );
        drop(stream);

        let checkpoints = run.join("checkpoints");
        let requested: Vec<_> = checkpoint::list(&checkpoints)
            .into_iter()
            .filter(|(_, state)| state.requested)
            .collect();
        assert_eq!(requested.len(), 1, "{step:?}: {:?}", folders(&checkpoints));
        let (path, _) = &requested[0];
        let digits = kiln::experiment::Experiment::load(
            &crate::common::repo_path("experiments/digits.toml"),
            &[],
        )
        .unwrap();
        let model = Classifier::new(
            &digits.model,
            crate::common::digits_shape(),
            &burn::tensor::Device::flex(),
        );
        assert!(
            checkpoint::load_weights(path, model).is_ok(),
            "{step:?}: the checkpoint left is complete"
        );
        // A resume's tidy-up leaves it under its own name, with nothing half-written beside it.
        checkpoint::remove_partial(&checkpoints);
        assert!(
            folders(&checkpoints)
                .iter()
                .all(|name| !name.starts_with('.')),
            "{step:?}: {:?}",
            folders(&checkpoints)
        );
        assert_eq!(
            checkpoint::list(&checkpoints)
                .iter()
                .filter(|(_, s)| s.requested)
                .count(),
            1
        );
    }
}
