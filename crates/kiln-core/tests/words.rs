//! Events in words: the activity note and the plain line of each notable event come from one
//! function, say the same thing at two lengths, and leave routine events out of the notes.

use kiln_core::monitor::words::{Context, Detail, words};
use kiln_core::monitor::{Level, RunView};
use kiln_core::protocol::{Event, EventKind, HyperParameter, PauseReason};

fn event(kind: EventKind) -> Event {
    Event {
        time: "2026-12-05T10:00:00.000Z".into(),
        epoch: Some(3),
        step: Some(40),
        kind,
    }
}

fn texts(event: &Event, detail: Detail) -> Vec<String> {
    let context = Context {
        total_epochs: 12,
        run_dir: "runs/x",
        ..Context::default()
    };
    words(event, detail, &context)
        .into_iter()
        .map(|said| said.text)
        .collect()
}

#[test]
fn a_change_is_a_short_note_and_a_line_that_says_where() {
    let change = event(EventKind::HyperParameterChanged {
        parameter: HyperParameter::Dropout,
        from: 0.0,
        to: 0.3,
    });
    assert_eq!(texts(&change, Detail::Note), ["dropout 0.00 → 0.30"]);
    assert_eq!(
        texts(&change, Detail::Line),
        ["dropout 0 -> 0.3 (epoch 3, step 40)"]
    );
}

#[test]
fn routine_events_are_lines_but_not_notes() {
    let checkpoint = event(EventKind::CheckpointWritten {
        path: "checkpoints/epoch-0003".into(),
    });
    assert!(texts(&checkpoint, Detail::Note).is_empty());
    assert_eq!(
        texts(&checkpoint, Detail::Line),
        ["checkpoint checkpoints/epoch-0003 (epoch 3, step 40)"]
    );
    let pause = event(EventKind::Paused {
        reason: PauseReason::Diverged,
    });
    assert!(
        texts(&pause, Detail::Note).is_empty(),
        "the divergence says it"
    );
    assert_eq!(
        texts(&pause, Detail::Line),
        ["paused because the loss diverged (epoch 3, step 40)"]
    );
}

/// The live screen's activity list is made of the same notes.
#[test]
fn the_run_view_notes_what_words_say() {
    let diverged = event(EventKind::Diverged { loss: "NaN".into() });
    let view = RunView::replay([&diverged]);
    let note = &view.activity[0];
    assert_eq!(note.text, texts(&diverged, Detail::Note)[0]);
    assert_eq!(note.level, Level::Error);
    assert_eq!((note.epoch, note.step), (Some(3), Some(40)));
}
