//! `update`: how each message changes the run screen's state, and the effects it asks for.

use super::prompt::{self, Current, Edited};
use super::{
    Action, App, Awaiting, Effect, Gallery, Message, Mode, NoticeState, Phase, Prompt, Role, Screen,
};
use crate::format::lr;
use crate::monitor::RunStatus;
use crate::protocol::{Command, Event, EventKind, Fix, HyperParameter};

/// Dropout moves in steps of this size with `d` / `D`.
const DROPOUT_STEP: f64 = 0.05;
const DROPOUT_MAX: f64 = 0.95;

/// Tiles the image view moves by on ↑ / ↓: a row of the augmentation gallery (the original and
/// its draws).
const GALLERY_PAGE: usize = crate::gallery::DRAWS + 1;

/// Applies a message; returns the work for the event loop.
pub fn update(app: &mut App, message: Message) -> Vec<Effect> {
    match message {
        Message::Trainer(event) => {
            on_event(app, &event);
            alert(app, &event).into_iter().collect()
        }
        Message::TrainerGone => {
            if app.run.is_active() {
                app.run.status = RunStatus::Failed("the training thread ended unexpectedly".into());
            }
            if app.phase == (Phase::Stopping { then_quit: true }) {
                app.phase = Phase::Quit;
            }
            Vec::new()
        }
        Message::TerminalGone => {
            // Nobody can see or steer the screen any more, but the run is worth finishing.
            let trains_on =
                app.role == Role::Attached || (app.role == Role::Live && app.run.is_active());
            app.phase = if trains_on {
                Phase::TerminalGone
            } else {
                Phase::Quit
            };
            Vec::new()
        }
        Message::Action(action) => on_action(app, action),
        Message::Report { text, ok } => {
            app.report(text, ok);
            Vec::new()
        }
        Message::Gallery { request, result } => {
            if let Some(gallery) = app.gallery.as_mut().filter(|g| g.request == request) {
                match result {
                    Ok((pictures, encoded)) => {
                        gallery.content = Some(Ok(pictures));
                        gallery.encoded = encoded;
                    }
                    Err(err) => gallery.content = Some(Err(err)),
                }
            }
            Vec::new()
        }
    }
}

/// Opens the image view on `kind` and asks the event loop to build it (again: anew).
fn show_gallery(app: &mut App, kind: crate::gallery::Kind) -> Vec<Effect> {
    app.gallery_requests += 1;
    let request = app.gallery_requests;
    app.screen = Screen::Images;
    app.gallery = Some(Gallery {
        kind,
        request,
        content: None,
        first: 0,
        encoded: Default::default(),
    });
    vec![Effect::LoadGallery { kind, request }]
}

/// Pages through the image view by `tiles` (negative: back).
fn page_gallery(app: &mut App, tiles: isize) {
    if let Some(gallery) = app.gallery.as_mut() {
        let count = match &gallery.content {
            Some(Ok(content)) => content.tiles.len(),
            _ => 0,
        };
        let first = gallery.first as isize + tiles;
        gallery.first = first.clamp(0, count.saturating_sub(1) as isize) as usize;
    }
}

/// The terminal alert `event` deserves: the run ended, failed or has a new problem.
fn alert(app: &mut App, event: &Event) -> Option<Effect> {
    let alerts = app.alerts.as_mut()?;
    let notice = alerts.watcher.observe(event)?;
    Some(Effect::Alert {
        notice,
        config: alerts.config.clone(),
    })
}

fn on_event(app: &mut App, event: &Event) {
    app.run.apply(event);
    let awaiting = app.awaiting();
    let step = event.step.unwrap_or(app.run.step);
    let confirmed = match (&event.kind, awaiting) {
        (EventKind::Paused { .. }, Awaiting::Paused) => Some(format!("paused at step {step}")),
        (EventKind::Resumed, Awaiting::Resumed) => Some(format!("resumed at step {step}")),
        (EventKind::HyperParameterChanged { parameter, .. }, Awaiting::Change(wanted))
            if *parameter == wanted =>
        {
            app.run
                .changes
                .last()
                .map(|c| format!("{} applied at step {step}", c.describe()))
        }
        (EventKind::CheckpointWritten { path }, Awaiting::Checkpoint) => {
            Some(format!("checkpoint saved: {path}"))
        }
        (EventKind::Finished(_), Awaiting::Finished) => Some("run stopped".to_string()),
        _ => None,
    };
    if let Some(text) = confirmed {
        app.notify(text, NoticeState::Confirmed, Awaiting::Nothing);
    } else if let (EventKind::Warning { message }, Awaiting::Change(_)) = (&event.kind, awaiting) {
        app.notify(message.clone(), NoticeState::Rejected, Awaiting::Nothing);
    }
    if !app.run.is_active()
        && let Phase::Stopping { then_quit } = app.phase
    {
        app.phase = if then_quit {
            Phase::Quit
        } else {
            Phase::Showing
        };
    }
}

fn on_action(app: &mut App, action: Action) -> Vec<Effect> {
    match app.mode.clone() {
        Mode::Help => {
            if matches!(action, Action::ToggleHelp | Action::Cancel | Action::Quit) {
                app.mode = Mode::Normal;
                return Vec::new();
            }
            if action == Action::Interrupt {
                return on_normal_action(app, action);
            }
            Vec::new()
        }
        Mode::ConfirmQuit => match action {
            Action::Yes => {
                app.mode = Mode::Normal;
                quit(app)
            }
            Action::No | Action::Cancel => {
                app.mode = Mode::Normal;
                Vec::new()
            }
            Action::Interrupt => on_normal_action(app, action),
            _ => Vec::new(),
        },
        Mode::Prompt(open) => {
            let current = Current {
                dropout: app.run.dropout,
                learning_rate: app.run.learning_rate,
            };
            match prompt::edit(open, action, &current) {
                Edited::Open(open) => {
                    app.mode = Mode::Prompt(open);
                    Vec::new()
                }
                Edited::Cancelled => {
                    app.mode = Mode::Normal;
                    Vec::new()
                }
                Edited::Interrupted => {
                    app.mode = Mode::Normal;
                    on_normal_action(app, Action::Interrupt)
                }
                Edited::Submitted(field, value) => {
                    app.mode = Mode::Normal;
                    if !app.run.is_active() || app.stopping() {
                        // Says why nothing was sent.
                        return on_normal_action(app, Action::EditValue);
                    }
                    match field {
                        HyperParameter::Dropout => set_dropout(app, value),
                        HyperParameter::LearningRate => set_learning_rate(app, value),
                        HyperParameter::BackboneFrozen => set_backbone_frozen(app, value != 0.0),
                    }
                }
            }
        }
        Mode::Normal => on_normal_action(app, action),
    }
}

/// Stops an active run and quits once it has ended; quits at once otherwise.
fn quit(app: &mut App) -> Vec<Effect> {
    if !app.run.is_active() {
        app.phase = Phase::Quit;
        return Vec::new();
    }
    let effects = stop(app);
    app.phase = Phase::Stopping { then_quit: true };
    effects
}

fn stop(app: &mut App) -> Vec<Effect> {
    if app.stopping() {
        return Vec::new();
    }
    app.phase = Phase::Stopping { then_quit: false };
    app.notify(
        "stop requested: finishing the batch and saving a checkpoint…",
        NoticeState::Pending,
        Awaiting::Finished,
    );
    vec![Effect::Send(Command::Stop)]
}

fn on_normal_action(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::TogglePause
        | Action::DropoutDown
        | Action::DropoutUp
        | Action::LearningRateDown
        | Action::LearningRateUp
        | Action::EditValue
        | Action::ToggleBackbone
        | Action::Checkpoint
        | Action::Stop
        | Action::ApplyRemedy(_) => match refusal(app) {
            Some(why) => {
                app.notify(why, NoticeState::Rejected, Awaiting::Nothing);
                Vec::new()
            }
            None => steer(app, action),
        },
        Action::Quit | Action::Interrupt => leave(app, action),
        // The event loop opens it: it reads the runs folder.
        Action::OpenBrowser => vec![Effect::OpenBrowser],
        Action::ShowAugmented => show_gallery(app, crate::gallery::Kind::Augmented),
        Action::ShowMistakes => show_gallery(app, crate::gallery::Kind::Mistakes),
        _ => {
            change_view(app, action);
            Vec::new()
        }
    }
}

/// Why the run cannot be steered from here, if it cannot.
fn refusal(app: &App) -> Option<&'static str> {
    if app.reviewed().is_some() {
        Some("a past run is read only")
    } else if !app.run.is_active() || app.stopping() {
        Some("the run is no longer training")
    } else {
        None
    }
}

/// An action that steers the training run: the command it sends, and the notice that waits
/// for the trainer to confirm it.
fn steer(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::TogglePause => {
            if matches!(app.run.status, RunStatus::Paused | RunStatus::Diverged) {
                app.notify("resume requested…", NoticeState::Pending, Awaiting::Resumed);
                vec![Effect::Send(Command::Resume)]
            } else {
                app.notify("pause requested…", NoticeState::Pending, Awaiting::Paused);
                vec![Effect::Send(Command::Pause)]
            }
        }
        Action::DropoutDown | Action::DropoutUp => {
            let delta = if action == Action::DropoutUp {
                DROPOUT_STEP
            } else {
                -DROPOUT_STEP
            };
            let value = ((app.run.dropout + delta) * 100.0).round() / 100.0;
            set_dropout(app, value.clamp(0.0, DROPOUT_MAX))
        }
        Action::LearningRateDown => set_learning_rate(app, app.run.learning_rate / 2.0),
        Action::LearningRateUp => set_learning_rate(app, app.run.learning_rate * 2.0),
        Action::EditValue => {
            app.mode = Mode::Prompt(Prompt {
                field: HyperParameter::Dropout,
                input: format!("{:.2}", app.run.dropout),
                error: None,
            });
            Vec::new()
        }
        Action::ToggleBackbone => match app.run.started.as_ref().and_then(|s| s.backbone.clone()) {
            Some(_) => set_backbone_frozen(app, !app.run.backbone_frozen),
            None => {
                app.notify(
                    "this model has no backbone to freeze (model.backbone)",
                    NoticeState::Rejected,
                    Awaiting::Nothing,
                );
                Vec::new()
            }
        },
        Action::Checkpoint => {
            app.notify(
                "checkpoint requested…",
                NoticeState::Pending,
                Awaiting::Checkpoint,
            );
            vec![Effect::Send(Command::Checkpoint)]
        }
        Action::Stop => stop(app),
        Action::ApplyRemedy(n) => apply_remedy(app, n),
        _ => Vec::new(),
    }
}

/// `q` and Ctrl-C: a viewer leaves at once; a live run asks first (`q`) or is stopped and then
/// left (Ctrl-C, or at once the second time).
fn leave(app: &mut App, action: Action) -> Vec<Effect> {
    if app.role == Role::Attached {
        // The run trains on in its own process.
        app.phase = Phase::Quit;
        return Vec::new();
    }
    match action {
        Action::Quit if app.run.is_active() => app.mode = Mode::ConfirmQuit,
        Action::Interrupt if !app.stopping() && app.has_trainer() && app.run.is_active() => {
            app.mode = Mode::Normal;
            return quit(app);
        }
        // Nothing left to stop, or a second Ctrl-C: leave now.
        _ => app.phase = Phase::Quit,
    }
    Vec::new()
}

/// What the screen shows and where: views, chart scale, help, scrolling.
fn change_view(app: &mut App, action: Action) {
    match action {
        Action::ToggleChart => {
            app.screen = match app.screen {
                Screen::Chart | Screen::Images => Screen::Dashboard,
                Screen::Dashboard | Screen::Classes => Screen::Chart,
            };
        }
        Action::ToggleClasses => {
            app.screen = match app.screen {
                Screen::Classes => Screen::Dashboard,
                Screen::Dashboard | Screen::Chart | Screen::Images => Screen::Classes,
            };
        }
        Action::ToggleRange => app.scale = app.scale.next(),
        Action::ToggleHelp => app.mode = Mode::Help,
        Action::ScrollUp if app.screen == Screen::Images => {
            page_gallery(app, -(GALLERY_PAGE as isize));
        }
        Action::ScrollDown if app.screen == Screen::Images => {
            page_gallery(app, GALLERY_PAGE as isize);
        }
        Action::ScrollUp => {
            let max = app.run.epochs.len().saturating_sub(1);
            app.table_scroll = (app.table_scroll + 1).min(max);
        }
        Action::ScrollDown => app.table_scroll = app.table_scroll.saturating_sub(1),
        Action::ScrollToLatest => app.table_scroll = 0,
        _ => {}
    }
}

fn apply_remedy(app: &mut App, n: usize) -> Vec<Effect> {
    let remedy = app
        .run
        .findings()
        .first()
        .and_then(|f| f.remedies.get(n.wrapping_sub(1)).cloned());
    let Some(remedy) = remedy else {
        app.notify(
            format!("no remedy {n} to apply"),
            NoticeState::Rejected,
            Awaiting::Nothing,
        );
        return Vec::new();
    };
    match remedy.fix {
        Fix::SetDropout { value } => set_dropout(app, value),
        Fix::SetLearningRate { value } => set_learning_rate(app, value),
        Fix::Stop => stop(app),
        Fix::NewExperiment { suffix, settings } => {
            app.notify(
                format!("writing the {suffix} experiment…"),
                NoticeState::Pending,
                Awaiting::Nothing,
            );
            vec![Effect::WriteExperiment { suffix, settings }]
        }
    }
}

fn set_dropout(app: &mut App, value: f64) -> Vec<Effect> {
    app.notify(
        format!("dropout {value:.2} requested…"),
        NoticeState::Pending,
        Awaiting::Change(HyperParameter::Dropout),
    );
    vec![Effect::Send(Command::SetDropout { value })]
}

fn set_backbone_frozen(app: &mut App, frozen: bool) -> Vec<Effect> {
    let what = if frozen { "freezing" } else { "unfreezing" };
    app.notify(
        format!("{what} the backbone…"),
        NoticeState::Pending,
        Awaiting::Change(HyperParameter::BackboneFrozen),
    );
    vec![Effect::Send(Command::SetBackboneFrozen { frozen })]
}

fn set_learning_rate(app: &mut App, value: f64) -> Vec<Effect> {
    app.notify(
        format!("learning rate {} requested…", lr(value)),
        NoticeState::Pending,
        Awaiting::Change(HyperParameter::LearningRate),
    );
    vec![Effect::Send(Command::SetLearningRate { value })]
}
