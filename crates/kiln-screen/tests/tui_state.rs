//! The live screen's state: events in, state out; keys in, commands out.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kiln_core::monitor::{RunStatus, RunView};
use kiln_core::protocol::{Command, EventKind, HyperParameter, Outcome, PauseReason};
use kiln_screen::tui::app::{
    Action, App, Effect, Message, Mode, NoticeState, Screen, commands, update,
};
use kiln_screen::tui::keys::action_for;

use crate::script::{OVERFITTING, Script, at};

fn started_app() -> App {
    let mut app = App::live();
    for event in Script::new(10).started().events {
        update(&mut app, Message::Trainer(event));
    }
    app
}

fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    press_with(app, code, KeyModifiers::NONE)
}

fn press_with(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Command> {
    commands(&effects_of_key(app, code, modifiers))
}

/// Everything a key asks the event loop to do.
fn effects_of_key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    match action_for(&app.mode, KeyEvent::new(code, modifiers)) {
        Some(action) => update(app, Message::Action(action)),
        None => Vec::new(),
    }
}

fn trainer(app: &mut App, epoch: usize, step: u64, kind: EventKind) {
    update(app, Message::Trainer(at(epoch, step, kind)));
}

#[test]
fn events_build_the_run_view() {
    let script = Script::new(4)
        .started()
        .epochs(&[(0.80, 0.78), (0.90, 0.85)])
        .change(HyperParameter::Dropout, 0.0, 0.3)
        .epochs(&[(0.95, 0.86)]);
    let view = RunView::replay(&script.events);
    assert_eq!(view.status, RunStatus::Running);
    assert_eq!(view.epochs.len(), 3);
    assert_eq!(view.epoch, 3);
    assert_eq!(view.dropout, 0.3);
    assert_eq!(view.changes.len(), 1);
    assert_eq!(
        view.changes[0].epoch, 3,
        "the change happened during epoch 3"
    );
    assert_eq!(view.best_epoch(), Some(3));
    assert_eq!(view.train_loss.len(), 3 * script.batches);
    assert!((view.progress() - 0.75).abs() < 1e-9, "{}", view.progress());
    let eta = view.eta_seconds().unwrap();
    assert!(
        (eta - 2.0).abs() < 1e-9,
        "one epoch left at 2 s each: {eta}"
    );
    assert!(
        view.activity
            .iter()
            .any(|a| a.text == "dropout 0.00 → 0.30")
    );
}

#[test]
fn overfitting_shows_after_patience_epochs_and_names_the_fix() {
    let early = Script::new(10).started().epochs(&[(0.9, 0.8), (0.95, 0.8)]);
    assert!(
        RunView::replay(&early.events).findings().is_empty(),
        "2 epochs < patience 3"
    );
    let late = early.epochs(&[(0.99, 0.8)]);
    let findings = RunView::replay(&late.events).findings();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].since_epoch, 1);
    assert!(
        findings[0]
            .evidence
            .contains("gap 14.7 pts over the last 3 epochs"),
        "{findings:#?}"
    );
    assert!(
        findings[0]
            .remedies
            .iter()
            .any(|r| matches!(r.fix, kiln_core::protocol::Fix::SetDropout { .. }))
    );
}

#[test]
fn pause_is_acknowledged_then_confirmed() {
    let mut app = started_app();
    assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![Command::Pause]);
    let notice = app.notice.clone().unwrap();
    assert_eq!(notice.state, NoticeState::Pending);
    assert_eq!(notice.text, "pause requested…");
    trainer(
        &mut app,
        1,
        5,
        EventKind::Paused {
            reason: PauseReason::Requested,
        },
    );
    assert_eq!(app.run.status, RunStatus::Paused);
    let notice = app.notice.clone().unwrap();
    assert_eq!(
        (notice.state, notice.text.as_str()),
        (NoticeState::Confirmed, "paused at step 5")
    );
    assert_eq!(press(&mut app, KeyCode::Char(' ')), vec![Command::Resume]);
}

#[test]
fn dropout_and_learning_rate_keys_send_commands() {
    let mut app = started_app();
    assert_eq!(
        press(&mut app, KeyCode::Char('D')),
        vec![Command::SetDropout { value: 0.05 }]
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('d')),
        vec![Command::SetDropout { value: 0.0 }]
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('l')),
        vec![Command::SetLearningRate { value: 5e-4 }]
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('L')),
        vec![Command::SetLearningRate { value: 2e-3 }]
    );
    trainer(
        &mut app,
        1,
        7,
        EventKind::HyperParameterChanged {
            parameter: HyperParameter::LearningRate,
            from: 1e-3,
            to: 2e-3,
        },
    );
    let notice = app.notice.clone().unwrap();
    assert_eq!(notice.state, NoticeState::Confirmed);
    assert_eq!(notice.text, "lr 1e-3 → 2e-3 applied at step 7");
    assert_eq!(
        press(&mut app, KeyCode::Char('c')),
        vec![Command::Checkpoint]
    );
}

#[test]
fn the_prompt_validates_before_sending() {
    let mut app = started_app();
    press(&mut app, KeyCode::Char('e'));
    assert!(matches!(app.mode, Mode::Prompt(_)));
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    for c in "1.5".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    let Mode::Prompt(prompt) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert_eq!(prompt.error.as_deref(), Some("dropout must be in [0, 1)"));

    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    for c in "0.35".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::SetDropout { value: 0.35 }]
    );
    assert_eq!(app.mode, Mode::Normal);

    press(&mut app, KeyCode::Char('e'));
    press(&mut app, KeyCode::Tab);
    let Mode::Prompt(prompt) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert_eq!(prompt.field, HyperParameter::LearningRate);
    assert_eq!(prompt.input, "1e-3");
    // Keys that mean something elsewhere are just text here, and Esc sends nothing.
    assert!(press(&mut app, KeyCode::Char('q')).is_empty());
    assert!(press(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.should_quit());
}

#[test]
fn quit_asks_while_training_and_stops_first() {
    let mut app = started_app();
    assert!(press(&mut app, KeyCode::Char('q')).is_empty());
    assert_eq!(app.mode, Mode::ConfirmQuit);
    assert!(press(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(press(&mut app, KeyCode::Char('y')), vec![Command::Stop]);
    assert!(app.stopping() && !app.should_quit());
    let finished = Script::new(10).finished(Outcome::Stopped, 0);
    for event in finished.events {
        update(&mut app, Message::Trainer(event));
    }
    assert!(app.should_quit());
}

#[test]
fn stop_keeps_the_screen_and_q_then_quits_at_once() {
    let mut app = started_app();
    assert_eq!(press(&mut app, KeyCode::Char('s')), vec![Command::Stop]);
    assert!(
        press(&mut app, KeyCode::Char('s')).is_empty(),
        "stop is sent once"
    );
    for event in Script::new(10).finished(Outcome::Stopped, 0).events {
        update(&mut app, Message::Trainer(event));
    }
    assert_eq!(app.run.status, RunStatus::Finished(Outcome::Stopped));
    assert!(!app.should_quit(), "the screen stays to review the run");
    assert!(
        press(&mut app, KeyCode::Char(' ')).is_empty(),
        "nothing left to pause"
    );
    assert_eq!(app.notice.as_ref().unwrap().state, NoticeState::Rejected);
    press(&mut app, KeyCode::Char('q'));
    assert!(app.should_quit());
}

#[test]
fn ctrl_c_stops_then_quits_and_a_second_one_quits_now() {
    let mut app = started_app();
    assert_eq!(
        press_with(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
        vec![Command::Stop]
    );
    assert!(!app.should_quit());
    assert!(press_with(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL).is_empty());
    assert!(app.should_quit());
}

#[test]
fn a_vanished_trainer_is_a_failure_not_a_hang() {
    let mut app = started_app();
    update(&mut app, Message::TrainerGone);
    assert!(matches!(app.run.status, RunStatus::Failed(_)));
    press(&mut app, KeyCode::Char('q'));
    assert!(app.should_quit());
}

#[test]
fn views_and_scrolling() {
    let mut app = App::new();
    for event in Script::new(30).started().epochs(&[(0.5, 0.5); 20]).events {
        update(&mut app, Message::Trainer(event));
    }
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.screen, Screen::Chart);
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.screen, Screen::Dashboard);
    press(&mut app, KeyCode::Char('?'));
    assert_eq!(app.mode, Mode::Help);
    assert!(
        press(&mut app, KeyCode::Char(' ')).is_empty(),
        "help swallows keys"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, Mode::Normal);
    for _ in 0..3 {
        press(&mut app, KeyCode::Up);
    }
    assert_eq!(app.table_scroll, 3);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.table_scroll, 2);
    press(&mut app, KeyCode::End);
    assert_eq!(app.table_scroll, 0);
    assert_eq!(
        update(&mut app, Message::Action(Action::ScrollDown)),
        vec![]
    );
    assert_eq!(app.table_scroll, 0);
}

#[test]
fn without_a_trainer_ctrl_c_quits_at_once() {
    let mut app = App::new();
    assert!(press_with(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL).is_empty());
    assert!(app.should_quit());
}

#[test]
fn a_past_run_is_read_only() {
    let mut app = App::review(kiln_core::runs::RunState::Interrupted);
    for event in Script::new(10).started().epochs(&[(0.5, 0.5)]).events {
        update(&mut app, Message::Trainer(event));
    }
    assert!(press(&mut app, KeyCode::Char(' ')).is_empty());
    assert!(press(&mut app, KeyCode::Char('D')).is_empty());
    assert_eq!(app.notice.as_ref().unwrap().text, "a past run is read only");
}

#[test]
fn numbered_remedies_apply_live_or_ask_for_a_new_file() {
    let mut app = App::live();
    let script = Script::new(20).started().epochs(&[
        (0.80, 0.79),
        (0.90, 0.84),
        (0.96, 0.85),
        (0.99, 0.85),
        (1.0, 0.84),
    ]);
    for event in script.events {
        update(&mut app, Message::Trainer(event));
    }
    assert_eq!(
        press(&mut app, KeyCode::Char('f')),
        vec![Command::SetDropout { value: 0.2 }],
        "f applies the first remedy: raise dropout, live"
    );
    let effects = effects_of_key(&mut app, KeyCode::Char('2'), KeyModifiers::NONE);
    assert!(commands(&effects).is_empty());
    let Some(Effect::WriteExperiment { suffix, settings }) = effects.first().cloned() else {
        panic!("a new experiment to write: {effects:?}")
    };
    assert_eq!(suffix, "augment");
    assert!(settings.iter().any(|(k, _)| k == "augment.rotation"));
    assert_eq!(press(&mut app, KeyCode::Char('3')), vec![Command::Stop]);
    assert!(press(&mut app, KeyCode::Char('9')).is_empty());
}

#[test]
fn routine_checkpoints_stay_out_of_the_activity_log_and_a_paused_run_has_no_eta() {
    let mut app = started_app();
    trainer(
        &mut app,
        1,
        1,
        EventKind::Batch(kiln_core::protocol::BatchProgress {
            batch: 1,
            batches: 4,
            loss: 1.0,
            images_per_second: 1000.0,
        }),
    );
    assert!(app.run.eta_seconds().is_some(), "a training run has an ETA");
    update(
        &mut app,
        Message::Trainer(at(
            1,
            4,
            EventKind::Paused {
                reason: PauseReason::Requested,
            },
        )),
    );
    assert_eq!(app.run.eta_seconds(), None, "the clock stops while paused");
    update(&mut app, Message::Trainer(at(1, 4, EventKind::Resumed)));
    for epoch in 1..=3 {
        trainer(
            &mut app,
            epoch,
            4 * epoch as u64,
            EventKind::CheckpointWritten {
                path: format!("checkpoints/epoch-{epoch:04}-step-{:07}", 4 * epoch),
            },
        );
    }
    assert_eq!(app.run.last_checkpoint, Some(3));
    assert!(
        !app.run
            .activity
            .iter()
            .any(|a| a.text.contains("checkpoint")),
        "{:?}",
        app.run.activity
    );
    assert!(
        app.run.activity.iter().any(|a| a.text == "paused"),
        "pauses stay"
    );
}

#[test]
fn chart_axes_span_the_data_with_a_margin() {
    use kiln_core::monitor::axis_range;
    let [low, high] = axis_range([0.94, 1.0, 0.96].into_iter(), 0.02);
    assert!((low - (0.97 - 0.033)).abs() < 1e-9 && (high - (0.97 + 0.033)).abs() < 1e-9);
    // A flat series still gets an axis at least `min_span` wide, centred on it.
    let [low, high] = axis_range([0.5, 0.5].into_iter(), 0.02);
    assert!((high - low - 0.022).abs() < 1e-9 && (low + high - 1.0).abs() < 1e-9);
    assert_eq!(axis_range(std::iter::empty(), 0.02), [0.0, 0.02]);
}

/// The whole screen follows one pattern: keys become messages (`keys::message_for`, pure), and
/// `ui::update` alone changes the state, returning the file work for the event loop.
#[test]
fn keys_become_messages_and_only_update_changes_the_screen() {
    use kiln_screen::tui::browser::{self, Browser, BrowserAction, BrowserMessage};
    use kiln_screen::tui::keys::message_for;
    use kiln_screen::tui::ui::{self, Ui, UiEffect, UiMessage};

    let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);

    // A live run with the browser opened over it: the browser takes the keys, Ctrl-C the run.
    let mut ui = Ui::new(started_app());
    let effects = ui::update(
        &mut ui,
        UiMessage::BrowserOpened(Box::new(Browser::new("no-such-runs".into()))),
    );
    assert_eq!(effects, [UiEffect::Browser(browser::Effect::Refresh)]);
    let down = message_for(&ui, press(KeyCode::Down));
    assert_eq!(
        down,
        Some(UiMessage::Browser(BrowserMessage::Action(
            BrowserAction::Down
        )))
    );
    assert_eq!(
        message_for(&ui, ctrl_c),
        Some(UiMessage::Run(Message::Action(Action::Interrupt)))
    );
    // Mapping a key changed nothing.
    let before = ui.clone();
    let _ = message_for(&ui, press(KeyCode::Esc));
    assert_eq!(ui, before);

    // What the file work found reaches the browser through update too.
    let runs = std::env::temp_dir().join(format!("kiln-screen-test-{}", std::process::id()));
    let run = runs.join("20261205-100000-baseline");
    std::fs::create_dir_all(&run).unwrap();
    let log: String = Script::new(3)
        .started()
        .events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(run.join("events.jsonl"), log).unwrap();
    ui.browser.as_mut().unwrap().runs_dir = runs.clone();
    let loaded = browser::perform(ui.browser.as_deref().unwrap(), browser::Effect::Refresh);
    assert!(
        ui.browser.as_ref().unwrap().listing.runs.is_empty(),
        "perform changes nothing"
    );
    ui::update(&mut ui, UiMessage::Browser(BrowserMessage::Loaded(loaded)));
    assert_eq!(ui.browser.as_ref().unwrap().listing.runs.len(), 1);
    let _ = std::fs::remove_dir_all(&runs);

    // Back closes the browser over a live run; the run's screen stays.
    let back = message_for(&ui, press(KeyCode::Esc)).unwrap();
    ui::update(&mut ui, back);
    assert!(ui.browser.is_none());
    assert!(!ui.app.should_quit());

    // A browser opened on its own quits the screen when closed.
    let mut alone = Ui::browsing(Browser::new("no-such-runs".into()));
    let back = message_for(&alone, press(KeyCode::Esc)).unwrap();
    ui::update(&mut alone, back);
    assert!(alone.browser.is_none() && alone.app.should_quit());
}

/// A scheduled rate is planned over the whole run from the start event, and a live change
/// scales the plan from its step on; the loss panel draws it, steps taken apart from the rest.
#[test]
fn a_scheduled_rate_is_planned_and_drawn() {
    use kiln_core::protocol::Event;
    use kiln_core::schedule::{ScheduleConfig, ScheduleKind, ScheduledRate};
    use kiln_screen::tui::Ui;
    use kiln_screen::tui::theme::Theme;

    let mut events: Vec<Event> = Script::new(10).started().events;
    let EventKind::RunStarted(start) = &mut events[0].kind else {
        panic!("the script starts with the run")
    };
    start.schedule = Some(ScheduledRate {
        config: ScheduleConfig {
            kind: ScheduleKind::Cosine,
            ..ScheduleConfig::default()
        },
        base: 1e-2,
    });
    let per_epoch = start.batches_per_epoch;
    let mut app = App::live();
    for event in events {
        update(&mut app, Message::Trainer(event));
    }
    let planned = app
        .run
        .planned_rates()
        .expect("a cosine schedule is planned");
    assert_eq!(planned.len(), 10 * per_epoch);
    assert_eq!(planned[0], 1e-2);
    assert!(planned.windows(2).all(|w| w[1] <= w[0]));

    // Halving the rate at step 7 halves the plan from there on, and only from there.
    let change = at(
        1,
        7,
        EventKind::HyperParameterChanged {
            parameter: HyperParameter::LearningRate,
            from: planned[7],
            to: planned[7] / 2.0,
        },
    );
    update(&mut app, Message::Trainer(change));
    let scaled = app.run.planned_rates().unwrap();
    assert_eq!(scaled[..7], planned[..7]);
    for step in 7..planned.len() {
        assert!((scaled[step] - planned[step] / 2.0).abs() < 1e-15);
    }

    let screen = crate::render::render_ui(&Ui::new(app), 100, 30, Theme::default());
    assert!(
        screen.lines().any(|l| l.starts_with("│lr    ")),
        "the loss panel has a rate line:\n{screen}"
    );
}

/// A run that stops early shows its count against its patience.
#[test]
fn early_stopping_shows_its_patience() {
    use kiln_core::experiment::BestMetric;
    use kiln_core::protocol::{EarlyStopping, Event};
    use kiln_screen::tui::Ui;
    use kiln_screen::tui::theme::Theme;

    let mut events: Vec<Event> = Script::new(10)
        .started()
        .epochs(&[(0.80, 0.79), (0.90, 0.84), (0.96, 0.85)])
        .events;
    let EventKind::RunStarted(start) = &mut events[0].kind else {
        panic!("the script starts with the run")
    };
    start.early_stopping = Some(EarlyStopping {
        patience: 5,
        min_delta: 0.0,
        metric: BestMetric::ValAccuracy,
    });
    let mut app = App::live();
    for event in events {
        update(&mut app, Message::Trainer(event));
    }
    assert_eq!(
        app.run.patience(),
        Some((0, 5)),
        "the last epoch is the best"
    );
    let screen = crate::render::render_ui(&Ui::new(app), 100, 30, Theme::default());
    assert!(screen.contains("patience 0/5"), "{screen}");
}

/// The terminal alerts: a new problem and the end ring it, the replayed history does not, and
/// `[notify]` with bell and desktop off keeps it quiet.
#[test]
fn the_end_and_a_new_problem_ring_the_terminal_once() {
    use kiln_core::notify::{Desktop, NotifyConfig};
    use kiln_screen::tui::app::Alerts;

    let alerts_of = |effects: Vec<Effect>| -> Vec<String> {
        effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Alert { notice, .. } => Some(notice.title),
                _ => None,
            })
            .collect()
    };
    // Overfitting from epoch 3 of this script (a widening gap), then the end; the screen opens
    // after the first epoch (a resumed run's replay).
    let events = Script::new(8)
        .started()
        .epochs(&OVERFITTING)
        .finished(Outcome::Completed, 5)
        .events;
    let first_epoch = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::Epoch(_)))
        .unwrap();
    let (history, rest) = events.split_at(first_epoch + 1);
    let mut app = App::live();
    app.alerts = Alerts::new(&NotifyConfig::default(), history);
    let mut rung = Vec::new();
    for event in history.iter().chain(rest) {
        rung.extend(alerts_of(update(&mut app, Message::Trainer(event.clone()))));
    }
    assert_eq!(
        rung,
        vec![
            "kiln: baseline: overfitting".to_string(),
            "kiln: baseline finished".to_string()
        ]
    );
    let quiet = NotifyConfig {
        bell: false,
        desktop: Desktop::Off,
        ..NotifyConfig::default()
    };
    assert_eq!(Alerts::new(&quiet, &[]), None);
}

/// `b` freezes or unfreezes a backbone: the command goes out, the trainer's change confirms it,
/// and the header counts the frozen parameters. A model without a backbone says so instead.
#[test]
fn b_toggles_the_backbone_and_the_header_counts_what_is_frozen() {
    use kiln_core::protocol::Event;
    use kiln_screen::tui::Ui;
    use kiln_screen::tui::theme::Theme;

    let mut events: Vec<Event> = Script::new(10).started().events;
    let EventKind::RunStarted(start) = &mut events[0].kind else {
        panic!("the script starts with the run")
    };
    start.backbone = Some("resnet18".into());
    start.parameters = 11_175_370;
    start.backbone_parameters = Some(11_170_240);
    start.backbone_frozen = true;
    let mut app = App::live();
    for event in events {
        update(&mut app, Message::Trainer(event));
    }
    let header = |app: &App| {
        let screen = crate::render::render_ui(&Ui::new(app.clone()), 120, 30, Theme::default());
        screen.lines().nth(2).unwrap_or_default().to_string()
    };
    assert!(
        header(&app).contains("backbone frozen: 11.2M ·") && header(&app).contains("11.2M params"),
        "{}",
        header(&app)
    );
    assert_eq!(app.run.parameter_split(), Some((5_130, 11_170_240)));

    assert_eq!(
        press(&mut app, KeyCode::Char('b')),
        [Command::SetBackboneFrozen { frozen: false }]
    );
    trainer(
        &mut app,
        1,
        3,
        EventKind::HyperParameterChanged {
            parameter: HyperParameter::BackboneFrozen,
            from: 1.0,
            to: 0.0,
        },
    );
    let notice = app.notice.clone().unwrap();
    assert_eq!(notice.state, NoticeState::Confirmed);
    assert_eq!(notice.text, "backbone unfrozen applied at step 3");
    assert!(!app.run.backbone_frozen);
    assert!(
        header(&app).contains("11.2M params") && !header(&app).contains("frozen"),
        "{}",
        header(&app)
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('b')),
        [Command::SetBackboneFrozen { frozen: true }]
    );

    let mut cnn = started_app();
    assert!(press(&mut cnn, KeyCode::Char('b')).is_empty());
    let notice = cnn.notice.clone().unwrap();
    assert_eq!(notice.state, NoticeState::Rejected);
    assert!(notice.text.contains("no backbone"), "{}", notice.text);
}
