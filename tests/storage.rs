//! A disk that cannot be written (full, over quota): the run pauses with a clear event instead
//! of dying, and goes on when the user resumes after freeing space.

use std::io::Read;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use kiln::experiment::Experiment;
use kiln::protocol::{Command, EventKind, PauseReason};
use kiln::train::{self, TrainOptions};

use crate::common::{repo_path, scratch, stop_run, training_lock, wait_for};

fn is_storage_pause(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Paused {
            reason: PauseReason::Storage
        }
    )
}

#[test]
fn a_checkpoint_that_cannot_be_written_pauses_the_run_until_resumed() {
    let _guard = training_lock();
    let experiment = Experiment::load(
        &repo_path("experiments/digits.toml"),
        &["train.backend=cpu".into(), "train.epochs=50".into()],
    )
    .unwrap();
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: scratch("storage"),
    })
    .unwrap();
    wait_for(&handle.events, "first batch", |k| {
        matches!(k, EventKind::Batch(_))
    });
    handle.commands.send(Command::Pause).unwrap();
    wait_for(&handle.events, "paused", |k| {
        matches!(k, EventKind::Paused { .. })
    });

    // Break the checkpoints folder while paused (a file where the folder was).
    let folder = handle.run.checkpoints_path();
    let aside = handle.run.path.join("checkpoints-aside");
    std::fs::rename(&folder, &aside).unwrap();
    std::fs::write(&folder, "not a folder").unwrap();
    handle.commands.send(Command::Resume).unwrap();
    let seen = wait_for(&handle.events, "the storage pause", is_storage_pause);
    assert!(seen.iter().any(|e| matches!(&e.kind,
        EventKind::Warning { message } if message.contains("checkpoint failed") && message.contains("free some space"))));
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e.kind, EventKind::CheckpointWritten { .. })),
        "nothing claims a checkpoint was written"
    );

    // Resuming while it still fails keeps the run paused and says so.
    handle.commands.send(Command::Resume).unwrap();
    let seen = wait_for(
        &handle.events,
        "the refusal",
        |k| matches!(k, EventKind::Warning { message } if message.contains("still cannot write")),
    );
    assert!(!seen.iter().any(|e| matches!(e.kind, EventKind::Resumed)));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        handle
            .events
            .try_iter()
            .all(|e| !matches!(e.kind, EventKind::Batch(_))),
        "no training while the checkpoint is owed"
    );

    // Space is back: resume writes the owed checkpoint first, then trains on.
    std::fs::remove_file(&folder).unwrap();
    std::fs::rename(&aside, &folder).unwrap();
    handle.commands.send(Command::Resume).unwrap();
    let seen = wait_for(&handle.events, "resumed", |k| {
        matches!(k, EventKind::Resumed)
    });
    assert!(
        seen.iter()
            .any(|e| matches!(e.kind, EventKind::CheckpointWritten { .. }))
    );
    wait_for(&handle.events, "training again", |k| {
        matches!(k, EventKind::Batch(_))
    });
    stop_run(handle);
}

#[test]
fn a_log_that_cannot_grow_pauses_the_run_instead_of_killing_it() {
    let _guard = training_lock();
    let runs = scratch("storage-log");
    // A 64 KiB file-size limit stands in for a full disk: the log stops growing mid-run.
    let command = format!(
        "ulimit -f 64; exec {} train experiments/digits.toml --headless --backend cpu \
         --set train.epochs=500 --set train.checkpoint_every=0 --runs-dir {}",
        env!("CARGO_BIN_EXE_kiln"),
        runs.display()
    );
    let mut child = Process::new("bash")
        .args(["-c", &command])
        .current_dir(repo_path(""))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let log = crate::common::only_run_eventually(&runs).join("events.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    // The log stops at the limit while the process lives on, paused.
    let mut last = 0;
    loop {
        assert!(Instant::now() < deadline, "the log never stopped growing");
        std::thread::sleep(Duration::from_millis(500));
        let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if size > 60 * 1024 && size == last {
            break;
        }
        last = size;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "kiln died at the limit"
    );
    // SIGTERM stops it cleanly, still paused.
    Process::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    assert!(out.contains("cannot write the event log"), "{out}");
    assert!(
        out.contains("paused because the disk cannot be written"),
        "{out}"
    );
    assert!(out.contains("stopped after"), "{out}");
    assert!(status.success(), "{status:?}\n{out}");
}
