//! The run log: round trips, torn lines from a killed run, unknown kinds, run directory names.

use std::io::Write;

use kiln_core::protocol::{
    BackendSummary, BatchProgress, EpochMetrics, Event, EventKind, FromCheckpoint, HyperParameter,
    Outcome, PauseReason, RunFinished,
};
use kiln_core::runs::{EventLog, RunDir, read_events, sanitise};

use crate::common::scratch;

fn sample_events() -> Vec<Event> {
    vec![
        kiln_core::here::event(
            Some(1),
            Some(3),
            EventKind::Batch(BatchProgress {
                batch: 3,
                batches: 10,
                loss: 0.75,
                images_per_second: 1234.5,
            }),
        ),
        kiln_core::here::event(
            Some(1),
            Some(3),
            EventKind::HyperParameterChanged {
                parameter: HyperParameter::Dropout,
                from: 0.0,
                to: 0.35,
            },
        ),
        kiln_core::here::event(
            Some(1),
            Some(10),
            EventKind::Epoch(EpochMetrics {
                train_loss: 0.5,
                train_accuracy: 0.9,
                validation_loss: 0.6,
                validation_accuracy: 0.85,
                learning_rate: 1e-3,
                dropout: 0.35,
                seconds: 2.5,
                images_per_second: 800.0,
                classes: None,
            }),
        ),
        kiln_core::here::event(
            Some(1),
            Some(10),
            EventKind::Paused {
                reason: PauseReason::Storage,
            },
        ),
        // Its fields sit beside the event's own `epoch` and `step`: no name may clash.
        kiln_core::here::event(
            Some(1),
            Some(10),
            EventKind::FromCheckpoint(Box::new(FromCheckpoint {
                run_id: "20260101-000000-baseline".into(),
                checkpoint: "checkpoints/epoch-0001-step-0000010".into(),
                epochs_completed: 1,
                batches_done: 0,
                learning_rate: 1e-3,
                dropout: 0.35,
                validation_loss: 0.6,
                validation_accuracy: 0.85,
                backend: BackendSummary {
                    name: "flex".into(),
                    device: "CPU".into(),
                    reason: "asked for".into(),
                    ..Default::default()
                },
                backbone_frozen: None,
            })),
        ),
        kiln_core::here::event(
            Some(1),
            Some(10),
            EventKind::Finished(RunFinished {
                outcome: Outcome::Stopped,
                epochs_completed: 1,
                best_epoch: Some(1),
                best_validation_accuracy: Some(0.85),
                seconds: 3.0,
                restored_epoch: None,
            }),
        ),
    ]
}

#[test]
fn events_round_trip_through_the_log() {
    let dir = scratch("log");
    let path = dir.join("events.jsonl");
    let mut log = EventLog::create(&path).unwrap();
    let events = sample_events();
    for event in &events {
        log.append(event).unwrap();
    }
    let contents = read_events(&path).unwrap();
    assert_eq!(contents.events, events);
    assert_eq!(contents.skipped_lines, 0);

    // A killed writer's torn line stays one unreadable line when the log is reopened.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"time\":\"2026")
        .unwrap();
    let mut reopened = EventLog::create(&path).unwrap();
    reopened.append(&events[0]).unwrap();
    let contents = read_events(&path).unwrap();
    assert_eq!(contents.skipped_lines, 1);
    assert_eq!(contents.events.last(), Some(&events[0]));
    assert_eq!(reopened.bytes(), std::fs::metadata(&path).unwrap().len());

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), events.len() + 2);
    for line in text.lines().filter(|l| *l != r#"{"time":"2026"#) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(value["kind"].is_string(), "{line}");
        assert!(value["time"].is_string(), "{line}");
    }
}

#[test]
fn torn_last_line_and_unknown_kinds_are_skipped() {
    let dir = scratch("torn");
    let path = dir.join("events.jsonl");
    let mut log = EventLog::create(&path).unwrap();
    let events = sample_events();
    for event in &events[..2] {
        log.append(event).unwrap();
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(
        file,
        r#"{{"time":"2026-01-01T00:00:00.000Z","kind":"from_the_future","x":1}}"#
    )
    .unwrap();
    let whole = serde_json::to_string(&events[2]).unwrap();
    file.write_all(&whole.as_bytes()[..whole.len() / 2])
        .unwrap();
    drop(file);

    let contents = read_events(&path).unwrap();
    assert_eq!(contents.events, events[..2].to_vec());
    assert_eq!(contents.skipped_lines, 2);
}

#[test]
fn run_dirs_are_named_by_time_and_experiment_and_never_shared() {
    let runs = scratch("runs");
    let first = RunDir::create(&runs, "my exp/1").unwrap();
    let second = RunDir::create(&runs, "my exp/1").unwrap();
    assert_ne!(first.path, second.path);
    assert!(first.id.ends_with("-my-exp-1"), "{}", first.id);
    let stamp = &first.id[..15];
    assert!(
        stamp
            .chars()
            .enumerate()
            .all(|(i, c)| if i == 8 { c == '-' } else { c.is_ascii_digit() }),
        "{stamp}"
    );
    assert!(first.checkpoints_path().is_dir());
    assert_eq!(sanitise("../../etc"), "etc");
    assert_eq!(sanitise("***"), "run");
}
