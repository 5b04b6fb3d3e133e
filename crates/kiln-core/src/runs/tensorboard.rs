//! A run as TensorBoard sees it: per-epoch scalars, the per-step training loss, per-class
//! recall, the hyper-parameter changes and the resolved experiment as text, in one event file
//! under `DIR/<run id>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::export::ExportError;
use super::store::OpenedRun;
use crate::protocol::{Event, EventKind, class_names, epoch_events};
use crate::tensorboard::EventWriter;

/// Seconds since the Unix epoch of an event's RFC 3339 time (0 when unreadable).
fn wall_time(event: &Event) -> f64 {
    chrono::DateTime::parse_from_rfc3339(&event.time)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// Writes `dir/<run id>/events.out.tfevents.*`; returns the file. Epoch scalars are at the
/// epoch number (TensorBoard's step axis), the per-batch loss at the optimiser step.
pub fn export_tensorboard(
    run: &OpenedRun,
    experiment_toml: Option<&str>,
    dir: &Path,
) -> Result<PathBuf, ExportError> {
    let folder = dir.join(&run.summary.id);
    let fail = |e: std::io::Error| ExportError::Write {
        path: folder.display().to_string(),
        message: e.to_string(),
    };
    let epochs = epoch_events(&run.events);
    if epochs.is_empty() {
        return Err(ExportError::NoEpochs);
    }
    // A file per export: an older export of the same run is replaced, not added to.
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(fail)?;
    }
    let start = run.events.first().map_or(0.0, wall_time);
    let mut writer = EventWriter::create(&folder, start, "kiln").map_err(fail)?;
    let classes = class_names(&run.events);
    if let Some(toml) = experiment_toml {
        let text = format!("```toml\n{toml}\n```");
        writer.text("experiment", 0, start, &text).map_err(fail)?;
    }
    for (i, (event, m)) in epochs.iter().enumerate() {
        let (epoch, time) = (event.epoch.unwrap_or(i + 1) as i64, wall_time(event));
        let scalars = [
            ("loss/train", m.train_loss),
            ("loss/validation", m.validation_loss),
            ("accuracy/train", m.train_accuracy),
            ("accuracy/validation", m.validation_accuracy),
            ("gap", m.gap()),
            ("learning_rate", m.learning_rate),
            ("dropout", m.dropout),
            ("images_per_second", m.images_per_second),
        ];
        for (tag, value) in scalars {
            writer
                .scalar(tag, epoch, time, value as f32)
                .map_err(fail)?;
        }
        if let Some(counts) = &m.classes {
            for score in crate::metrics::scores(counts) {
                let name = classes.get(score.class).map_or("?", String::as_str);
                let tag = format!("recall/{name}");
                writer
                    .scalar(&tag, epoch, time, score.recall as f32)
                    .map_err(fail)?;
            }
        }
    }
    // A restart trains some steps again: the later loss of a step is the one that counts.
    let mut batches: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let mut changes = Vec::new();
    for event in &run.events {
        match &event.kind {
            EventKind::Batch(batch) => {
                if let Some(step) = event.step {
                    batches.insert(step, (wall_time(event), batch.loss));
                }
            }
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            } => changes.push((event, format!("{} {from} → {to}", parameter.label()))),
            _ => {}
        }
    }
    for (step, (time, loss)) in batches {
        writer
            .scalar("loss/train_step", step as i64, time, loss as f32)
            .map_err(fail)?;
    }
    for (event, text) in changes {
        let epoch = event.epoch.unwrap_or(0) as i64;
        let text = format!("step {}: {text}", event.step.unwrap_or(0));
        writer
            .text("changes", epoch, wall_time(event), &text)
            .map_err(fail)?;
    }
    writer.finish().map_err(fail)
}
