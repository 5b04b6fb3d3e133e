//! Events in words: the one place where each kind of event becomes a sentence, for the live
//! screen's activity list ([`Detail::Note`]), the plain lines of a headless run
//! ([`Detail::Line`]) and the run report. The two details differ in how much they say, never in
//! what: both arms of an event kind sit side by side below.

use crate::format::{Tricks, lr};
use crate::protocol::{
    EpochMetrics, Event, EventKind, Finding, FromCheckpoint, HyperParameter, ParentRun,
    PauseReason, RunStarted,
};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// A short note for the activity list, which shows the epoch and step beside it; routine
    /// events (epochs, checkpoints) get none.
    Note,
    /// A self-contained line for a log or a pipe: every epoch, and where each change happened.
    Line,
}

/// How much a sentence matters (the activity list colours it by this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// One sentence, and how much it matters.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    pub text: String,
    pub level: Level,
}

/// What an event's words depend on besides the event: the run as it stood before it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// Epochs planned (the width of the epoch counter).
    pub total_epochs: usize,
    /// The run directory, named where a run ends.
    pub run_dir: &'a str,
    /// The run this one was forked from, if any.
    pub parent: Option<&'a ParentRun>,
    /// The findings of the diagnosis before this event.
    pub findings: &'a [Finding],
}

/// The sentences `event` is told in, at `detail`; none for events too frequent or routine.
pub fn words(event: &Event, detail: Detail, run: &Context) -> Vec<Said> {
    use Detail::{Line, Note};
    use Level::{Error, Info, Warning};
    let said = |text: String, level: Level| vec![Said { text, level }];
    let at = match (detail, event.epoch, event.step) {
        (Line, Some(epoch), Some(step)) => format!(" (epoch {epoch}, step {step})"),
        (Line, None, Some(step)) => format!(" (step {step})"),
        _ => String::new(),
    };
    match (&event.kind, detail) {
        (EventKind::Batch(_) | EventKind::Machine(_), _) => Vec::new(),
        (EventKind::RunStarted(start), Note) => said(
            format!(
                "started on {}: {}",
                start.backend.name,
                start.backend.reason_in_full()
            ),
            Info,
        ),
        (EventKind::RunStarted(start), Line) => said(run_started(start), Info),
        (EventKind::FromCheckpoint(from), detail) => {
            said(from_checkpoint(from, detail, run, &at), Info)
        }
        (EventKind::Epoch(_), Note) => Vec::new(),
        (EventKind::Epoch(m), Line) => said(epoch(event, m, run.total_epochs), Info),
        (
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            },
            Note,
        ) => said(change(*parameter, *from, *to), Info),
        (
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            },
            Line,
        ) => match parameter.switched(*to) {
            Some(switched) => said(format!("{switched}{at}"), Info),
            None => said(format!("{} {from} -> {to}{at}", parameter.label()), Info),
        },
        (EventKind::Paused { reason }, Note) => match reason {
            // A divergence and a full disk say so in their own events.
            PauseReason::Requested => said("paused".into(), Info),
            PauseReason::Diverged | PauseReason::Storage => Vec::new(),
        },
        (EventKind::Paused { reason }, Line) => said(
            match reason {
                PauseReason::Requested => format!("paused{at}"),
                PauseReason::Diverged => format!("paused because the loss diverged{at}"),
                PauseReason::Storage => format!("paused because the disk cannot be written{at}"),
            },
            Info,
        ),
        (EventKind::Resumed, _) => said(format!("resumed{at}"), Info),
        (EventKind::CheckpointWritten { .. }, Note) => Vec::new(),
        (EventKind::CheckpointWritten { path }, Line) => {
            said(format!("checkpoint {path}{at}"), Info)
        }
        (EventKind::Warning { message }, Note) => said(message.clone(), Warning),
        (EventKind::Warning { message }, Line) => said(format!("warning: {message}"), Warning),
        (EventKind::Diverged { loss }, Note) => said(format!("loss became {loss}: paused"), Error),
        (EventKind::Diverged { loss }, Line) => said(
            format!(
                "the loss is {loss}{at}: the run is paused; lower the learning rate and resume"
            ),
            Error,
        ),
        (EventKind::Diagnosis { findings }, detail) => diagnosis(findings, detail, run, &at),
        (EventKind::Finished(end), detail) => {
            let how = end.outcome.label();
            let mut text = format!("{how} after {} epoch(s)", end.epochs_completed);
            if let Some(epoch) = end.restored_epoch {
                text.push_str(&format!(": the model is the best epoch's, {epoch}"));
            }
            if detail == Line {
                text.push_str(&format!(" in {:.1}s", end.seconds));
                if let (Some(epoch), Some(acc)) = (end.best_epoch, end.best_validation_accuracy) {
                    text.push_str(&format!(
                        ", best validation accuracy {acc:.4} at epoch {epoch}"
                    ));
                }
                text.push_str(&format!("\nrun: {}", run.run_dir));
            }
            said(text, Info)
        }
        (EventKind::Failed { error }, Note) => said(format!("failed: {error}"), Error),
        (EventKind::Failed { error }, Line) => {
            said(format!("failed: {error}\nrun: {}", run.run_dir), Error)
        }
    }
}

/// The opening of a run's lines: what it trains on where, and with what model and tricks.
fn run_started(start: &RunStarted) -> String {
    let d = &start.dataset;
    let precision = match start.backend.precision.as_str() {
        "" => String::new(),
        precision => format!(", in {precision}"),
    };
    format!(
        "kiln · {} · {} ({} train / {} validation, {} classes, {}x{}x{}) · {} on {}{precision}: {}\n\
         model: {}{} parameters · batch {} · lr {} · {}",
        start.experiment,
        d.name,
        d.train_images,
        d.validation_images,
        d.classes.len(),
        d.channels,
        d.height,
        d.width,
        start.backend.name,
        start.backend.device,
        start.backend.reason_in_full(),
        start
            .backbone
            .as_ref()
            .map_or(String::new(), |b| format!("{b}, ")),
        start.parameters,
        start.batch_size,
        start.learning_rate,
        Tricks {
            dropout: start.dropout,
            batch_norm: start.batch_norm,
            augmentation: start.augmentation,
        }
        .sentence(),
    ) + &start
        .controls
        .iter()
        .map(|control| format!(" · {control}"))
        .collect::<String>()
}

/// Where a resumed or forked run continues from, and how its checkpoint scores.
fn from_checkpoint(from: &FromCheckpoint, detail: Detail, run: &Context, at: &str) -> String {
    match detail {
        Detail::Note => {
            let what = match run.parent {
                Some(parent) if parent.run_id == from.run_id => {
                    format!("forked from {} after epoch {}", from.run_id, parent.epoch)
                }
                _ => format!("resumed from {}", from.checkpoint),
            };
            format!(
                "{what}: val loss {:.4} acc {:.4}",
                from.validation_loss, from.validation_accuracy
            )
        }
        Detail::Line => format!(
            "continuing from {} of {} after {} epoch(s){at}: val loss {:.4} acc {:.4} · lr {} · dropout {}",
            from.checkpoint,
            from.run_id,
            from.epochs_completed,
            from.validation_loss,
            from.validation_accuracy,
            from.learning_rate,
            from.dropout,
        ),
    }
}

/// An epoch's line: its number of the planned, losses, accuracies, gap, time and speed.
fn epoch(event: &Event, m: &EpochMetrics, total_epochs: usize) -> String {
    format!(
        "epoch {:>width$}/{}  train loss {:.4} acc {:.4}  val loss {:.4} acc {:.4}  gap {:+.4}  {:.1}s  {:.0} img/s",
        event.epoch.unwrap_or(0),
        total_epochs,
        m.train_loss,
        m.train_accuracy,
        m.validation_loss,
        m.validation_accuracy,
        m.gap(),
        m.seconds,
        m.images_per_second,
        width = total_epochs.to_string().len(),
    )
}

/// A diagnosis in words: as a note, each problem that appeared (with its evidence) or cleared;
/// as lines, the whole diagnosis whenever its problems change.
fn diagnosis(findings: &[Finding], detail: Detail, run: &Context, at: &str) -> Vec<Said> {
    let problems = |f: &[Finding]| f.iter().map(|x| x.problem).collect::<Vec<_>>();
    let (before, after) = (problems(run.findings), problems(findings));
    match detail {
        Detail::Note => {
            let appeared = findings
                .iter()
                .filter(|f| !before.contains(&f.problem))
                .map(|f| Said {
                    text: format!("{}: {}", f.problem.title(), f.evidence),
                    level: Level::Warning,
                });
            let cleared = before.iter().filter(|p| !after.contains(p)).map(|p| Said {
                text: format!("{} cleared", p.title()),
                level: Level::Info,
            });
            appeared.chain(cleared).collect()
        }
        Detail::Line if before == after => Vec::new(),
        Detail::Line if findings.is_empty() => vec![Said {
            text: format!("diagnosis: healthy again{at}"),
            level: Level::Info,
        }],
        Detail::Line => findings
            .iter()
            .map(|f| {
                let tries: Vec<&str> = f.remedies.iter().map(|r| r.text.as_str()).collect();
                Said {
                    text: format!(
                        "diagnosis: {} since epoch {}: {}; try: {}",
                        f.problem.title(),
                        f.since_epoch,
                        f.evidence,
                        tries.join(", ")
                    ),
                    level: Level::Warning,
                }
            })
            .collect(),
    }
}

/// A hyper-parameter change in a few words: `dropout 0.00 → 0.30`, `lr 1e-3 → 3e-4`.
pub fn change(parameter: HyperParameter, from: f64, to: f64) -> String {
    match parameter {
        HyperParameter::Dropout => format!("dropout {from:.2} → {to:.2}"),
        HyperParameter::LearningRate => format!("lr {} → {}", lr(from), lr(to)),
        HyperParameter::BackboneFrozen => parameter.switched(to).unwrap_or_default().into(),
    }
}
