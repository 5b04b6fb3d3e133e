//! Plain-text progress for logs and pipes: one line per epoch and per notable event, no control
//! characters, and a closing summary naming the run directory.

use std::io::Write;

use crate::format::Tricks;
use crate::monitor::RunEnd;
use crate::protocol::{Event, EventKind, PauseReason};

/// Turns events into lines; remembers what later lines need (total epochs).
#[derive(Debug, Default)]
pub struct LineFormatter {
    epochs: usize,
    run_dir: String,
    /// Problems last reported: a diagnosis is printed only when this set changes.
    problems: Vec<crate::protocol::Problem>,
}

impl LineFormatter {
    pub fn new(run_dir: impl Into<String>) -> Self {
        Self {
            epochs: 0,
            run_dir: run_dir.into(),
            problems: Vec::new(),
        }
    }

    /// The line for an event, if it deserves one (batch progress does not).
    pub fn line(&mut self, event: &Event) -> Option<String> {
        let at = |event: &Event| match (event.epoch, event.step) {
            (Some(epoch), Some(step)) => format!(" (epoch {epoch}, step {step})"),
            (None, Some(step)) => format!(" (step {step})"),
            _ => String::new(),
        };
        Some(match &event.kind {
            EventKind::RunStarted(start) => {
                self.epochs = start.epochs;
                let d = &start.dataset;
                format!(
                    "kiln · {} · {} ({} train / {} validation, {} classes, {}x{}x{}) · {} on {}{}: {}\n\
                     model: {} parameters · batch {} · lr {} · {}",
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
                    precision_note(&start.backend.precision),
                    start.backend.reason_in_full(),
                    start.parameters,
                    start.batch_size,
                    start.learning_rate,
                    Tricks {
                        dropout: start.dropout,
                        batch_norm: start.batch_norm,
                        augmentation: start.augmentation,
                    }
                    .sentence(),
                )
            }
            // Too frequent for a line each; the log keeps them.
            EventKind::Batch(_) | EventKind::Machine(_) => return None,
            EventKind::FromCheckpoint(from) => format!(
                "continuing from {} of {} after {} epoch(s){}: val loss {:.4} acc {:.4} · lr {} · dropout {}",
                from.checkpoint,
                from.run_id,
                from.epochs_completed,
                at(event),
                from.validation_loss,
                from.validation_accuracy,
                from.learning_rate,
                from.dropout,
            ),
            EventKind::Epoch(m) => format!(
                "epoch {:>width$}/{}  train loss {:.4} acc {:.4}  val loss {:.4} acc {:.4}  gap {:+.4}  {:.1}s  {:.0} img/s",
                event.epoch.unwrap_or(0),
                self.epochs,
                m.train_loss,
                m.train_accuracy,
                m.validation_loss,
                m.validation_accuracy,
                m.gap(),
                m.seconds,
                m.images_per_second,
                width = self.epochs.to_string().len(),
            ),
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            } => {
                format!("{} {from} -> {to}{}", parameter.label(), at(event))
            }
            EventKind::Paused { reason } => match reason {
                PauseReason::Requested => format!("paused{}", at(event)),
                PauseReason::Diverged => format!("paused because the loss diverged{}", at(event)),
                PauseReason::Storage => {
                    format!("paused because the disk cannot be written{}", at(event))
                }
            },
            EventKind::Resumed => format!("resumed{}", at(event)),
            EventKind::CheckpointWritten { path } => format!("checkpoint {path}{}", at(event)),
            EventKind::Warning { message } => format!("warning: {message}"),
            EventKind::Diverged { loss } => format!(
                "the loss is {loss}{}: the run is paused; lower the learning rate and resume",
                at(event)
            ),
            EventKind::Diagnosis { findings } => {
                let problems: Vec<_> = findings.iter().map(|f| f.problem).collect();
                if problems == self.problems {
                    return None;
                }
                self.problems = problems;
                if findings.is_empty() {
                    return Some(format!("diagnosis: healthy again{}", at(event)));
                }
                findings
                    .iter()
                    .map(|f| {
                        let tries: Vec<&str> = f.remedies.iter().map(|r| r.text.as_str()).collect();
                        format!(
                            "diagnosis: {} since epoch {}: {}; try: {}",
                            f.problem.title(),
                            f.since_epoch,
                            f.evidence,
                            tries.join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            EventKind::Finished(end) => {
                let how = end.outcome.label();
                let best = match (end.best_epoch, end.best_validation_accuracy) {
                    (Some(epoch), Some(acc)) => {
                        format!(", best validation accuracy {acc:.4} at epoch {epoch}")
                    }
                    _ => String::new(),
                };
                format!(
                    "{how} after {} epoch(s) in {:.1}s{best}\nrun: {}",
                    end.epochs_completed, end.seconds, self.run_dir
                )
            }
            EventKind::Failed { error } => {
                format!("failed: {error}\nrun: {}", self.run_dir)
            }
        })
    }
}

/// Prints events as lines until the run ends. A closed output (e.g. `| head`) stops printing
/// but not the waiting: the run still ends properly.
pub fn follow(
    events: &crossbeam_channel::Receiver<Event>,
    formatter: &mut LineFormatter,
    out: &mut impl Write,
) -> RunEnd {
    let mut printing = true;
    for event in events.iter() {
        if printing && let Some(line) = formatter.line(&event) {
            printing = writeln!(out, "{line}").and_then(|_| out.flush()).is_ok();
        }
        match event.kind {
            EventKind::Finished(_) => return RunEnd::Finished,
            EventKind::Failed { .. } => return RunEnd::Failed,
            _ => {}
        }
    }
    RunEnd::Lost
}

/// `, in f32 (…)` after the device, or nothing for a log that did not record the precision.
fn precision_note(precision: &str) -> String {
    if precision.is_empty() {
        String::new()
    } else {
        format!(", in {precision}")
    }
}
