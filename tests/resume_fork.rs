//! Resume after `kill -9` and fork from a checkpoint, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use kiln::protocol::{EpochMetrics, Event, EventKind, Outcome, epoch_history};
use kiln::runs::{self, RunState, read_events};

use kiln::tui::Ui;
use kiln::tui::browser::{self, Browser, Effect};
use kiln::tui::theme::Theme;

use crate::common::{only_run, repo_path, scratch, train_digits, training_lock};

fn kiln(args: &[&str], runs_dir: &Path) -> Output {
    Process::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .arg("--runs-dir")
        .arg(runs_dir)
        .current_dir(repo_path(""))
        .output()
        .unwrap()
}

fn events(run_dir: &Path) -> Vec<Event> {
    read_events(&run_dir.join("events.jsonl")).unwrap().events
}

fn epoch_events(events: &[Event]) -> Vec<(usize, EpochMetrics)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Epoch(m) => Some((e.epoch.unwrap(), m.clone())),
            _ => None,
        })
        .collect()
}

/// Trains digits for `epochs` epochs to the end in a child process; returns its run directory.
fn finished_run(runs_dir: &Path, epochs: usize) -> PathBuf {
    let output = train_digits("--headless", epochs, runs_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    only_run(runs_dir)
}

#[test]
fn a_run_killed_mid_epoch_resumes_from_its_newest_checkpoint_and_finishes() {
    let _guard = training_lock();
    let runs_dir = scratch("resume");
    let epochs = 12;
    let mut child = train_digits("--headless", epochs, &runs_dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once two epochs are logged and the third is under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    let run_dir = loop {
        assert!(Instant::now() < deadline, "the run never reached epoch 3");
        if let Ok(dir) =
            std::fs::read_dir(&runs_dir).map(|mut d| d.next().map(|e| e.unwrap().path()))
            && let Some(dir) = dir
            && let Ok(log) = read_events(&dir.join("events.jsonl"))
            && log
                .events
                .iter()
                .any(|e| e.epoch == Some(3) && matches!(e.kind, EventKind::Batch(_)))
        {
            break dir;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let before = events(&run_dir);
    let logged = epoch_events(&before);
    assert!(
        logged.len() >= 2 && logged.len() < epochs,
        "{}",
        logged.len()
    );
    assert!(
        !before
            .iter()
            .any(|e| matches!(e.kind, EventKind::Finished(_)))
    );
    let listing = runs::list_runs(&runs_dir).unwrap();
    assert_eq!(listing.runs[0].state, RunState::Interrupted);
    // No checkpoint is ever half-written under its final name.
    for entry in std::fs::read_dir(run_dir.join("checkpoints")).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            for file in ["model.bpk", "optimizer.bpk", "state.json"] {
                assert!(path.join(file).is_file(), "{} lacks {file}", path.display());
            }
        }
    }

    // What a kill during a checkpoint write leaves: a temporary folder, never loaded.
    let partial = run_dir.join("checkpoints/.tmp-epoch-0099-step-0009999");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("model.bpk"), b"half").unwrap();

    let id = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    let output = kiln(&["resume", &id, "--headless"], &runs_dir);
    assert!(output.status.success(), "{output:?}");

    let after = events(&run_dir);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the log continues, not rewritten"
    );
    let resumed = after[before.len()..]
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::FromCheckpoint(from) => Some(from.clone()),
            _ => None,
        })
        .expect("the log marks the resume");
    let k = resumed.epochs_completed;
    assert!(k >= 2 && k <= logged.len(), "resumed after epoch {k}");
    // The restored weights are the ones that scored epoch k before the kill.
    assert!(
        (resumed.validation_loss - logged[k - 1].1.validation_loss).abs() < 1e-5,
        "restored {} vs logged {}",
        resumed.validation_loss,
        logged[k - 1].1.validation_loss
    );
    let new_epochs: Vec<usize> = epoch_events(&after[before.len()..])
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(new_epochs, ((k + 1)..=epochs).collect::<Vec<_>>());
    match &after.last().unwrap().kind {
        EventKind::Finished(end) => {
            assert_eq!(end.outcome, Outcome::Completed);
            assert_eq!(end.epochs_completed, epochs);
        }
        other => panic!("ends with {other:?}"),
    }
    assert_eq!(epoch_history(&after).len(), epochs);
    let summary = &runs::list_runs(&runs_dir).unwrap().runs[0];
    assert_eq!(summary.state, RunState::Finished);
    assert_eq!(summary.epochs_done, epochs);
    assert_eq!(summary.resumes, 1);
    assert!(!run_dir.join("kiln.pid").exists());
    assert!(!run_dir.join("control.sock").exists());
    assert!(
        !partial.exists(),
        "the half-written checkpoint is cleared away"
    );

    // A finished run is not resumed; it says how to go on.
    let again = kiln(&["resume", &id, "--headless"], &runs_dir);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("kiln fork"));
}

#[test]
fn a_fork_records_its_parent_and_starts_from_the_parents_weights() {
    let _guard = training_lock();
    let runs_dir = scratch("fork");
    let parent_dir = finished_run(&runs_dir, 4);
    let parent_id = parent_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let parent_epochs = epoch_events(&events(&parent_dir));

    let output = kiln(
        &[
            "fork",
            &parent_id,
            "--epoch",
            "2",
            "--set",
            "model.dropout=0.4",
            "--set",
            "train.epochs=3",
            "--headless",
        ],
        &runs_dir,
    );
    assert!(output.status.success(), "{output:?}");
    let fork_dir = std::fs::read_dir(&runs_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p != &parent_dir)
        .unwrap();
    let log = events(&fork_dir);
    let EventKind::RunStarted(start) = &log[0].kind else {
        panic!("{:?}", log[0]);
    };
    let parent = start.parent.as_ref().expect("the fork names its parent");
    assert_eq!(
        (parent.run_id.as_str(), parent.epoch),
        (parent_id.as_str(), 2)
    );
    assert_eq!(start.dropout, 0.4);

    let from = log
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::FromCheckpoint(from) => Some(from.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(from.run_id, parent_id);
    assert_eq!(from.epochs_completed, 2);
    assert!(
        (from.validation_loss - parent_epochs[1].1.validation_loss).abs() < 1e-5,
        "the fork starts from the parent's epoch-2 weights: {} vs {}",
        from.validation_loss,
        parent_epochs[1].1.validation_loss
    );
    let fork_epochs = epoch_events(&log);
    assert_eq!(fork_epochs.len(), 3);
    assert_eq!(fork_epochs[..2], parent_epochs[..2], "the inherited epochs");
    assert_eq!(fork_epochs[2].0, 3);
    assert_eq!(fork_epochs[2].1.dropout, 0.4);

    let listing = kiln(&["runs", "--plain"], &runs_dir);
    let table = String::from_utf8_lossy(&listing.stdout);
    assert!(
        table.contains(&format!("fork_of_{parent_id}@2")),
        "the listing shows the lineage:\n{table}"
    );

    // The browser shows the lineage beside the fork's experiment.
    let mut browser = Browser::new(runs_dir.clone());
    browser::execute(&mut browser, Effect::Refresh);
    let ui = Ui::browsing(browser);
    let screen = crate::render::render_ui(&ui, 160, 20, Theme::default());
    assert!(
        screen.contains(&format!("fork of {parent_id}@2")),
        "{screen}"
    );

    // The layers must match the checkpoint's: a clear error, not a crash.
    let reshaped = kiln(
        &[
            "fork",
            &parent_id,
            "--set",
            "model.dense=[32]",
            "--set",
            "train.epochs=6",
            "--headless",
        ],
        &runs_dir,
    );
    assert!(!reshaped.status.success());
    let text = String::from_utf8_lossy(&reshaped.stdout).into_owned()
        + &String::from_utf8_lossy(&reshaped.stderr);
    assert!(text.contains("layers must match"), "{text}");
    // An epoch without a checkpoint lists the ones there are.
    let missing = kiln(
        &["fork", &parent_id, "--epoch", "9", "--headless"],
        &runs_dir,
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("1, 2, 3, 4"));
}
