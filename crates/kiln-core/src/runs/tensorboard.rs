//! A run as TensorBoard sees it: per-epoch scalars, the per-step training loss, per-class
//! recall, the hyper-parameter changes and the resolved experiment as text, in one event file
//! under `DIR/<run id>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::export::ExportError;
use super::store::OpenedRun;
use crate::protocol::{EpochMetrics, Event, EventKind, HyperParameter, class_names, epoch_events};
use crate::tensorboard::EventWriter;

/// Seconds since the Unix epoch of an event's RFC 3339 time (0 when unreadable).
fn wall_time(event: &Event) -> f64 {
    chrono::DateTime::parse_from_rfc3339(&event.time)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// One epoch's scalars at `epoch` (TensorBoard's step axis), per-class recall included.
fn write_epoch(
    writer: &mut EventWriter,
    epoch: i64,
    time: f64,
    m: &EpochMetrics,
    classes: &[String],
) -> std::io::Result<()> {
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
        writer.scalar(tag, epoch, time, value as f32)?;
    }
    if let Some(counts) = &m.classes {
        for score in crate::metrics::scores(counts) {
            let tag = match classes.get(score.class) {
                Some(name) => format!("recall/{name}"),
                None => format!("recall/{}", score.class),
            };
            writer.scalar(&tag, epoch, time, score.recall as f32)?;
        }
    }
    Ok(())
}

/// How often the live file is flushed while batches come in (epochs flush at once).
const LIVE_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// A run's TensorBoard event file written while it trains, in the run directory, so
/// `tensorboard --logdir runs/` shows every run live (a resumed run adds a file beside the
/// first; TensorBoard reads them as one). The same records as [`export_tensorboard`]'s.
pub struct LiveBoard {
    writer: EventWriter,
    classes: Vec<String>,
    last_flush: std::time::Instant,
    /// Set once a write fails: it is reported once and the file left as it is.
    broken: bool,
}

impl LiveBoard {
    /// Opens a new event file in `run_dir`, with the resolved experiment as text. `classes`
    /// names the recall tags until a run-start event says them (a resumed run has none).
    pub fn create(
        run_dir: &Path,
        experiment_toml: &str,
        classes: Vec<String>,
    ) -> std::io::Result<Self> {
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        let mut writer = EventWriter::create(run_dir, now, "kiln")?;
        writer.text(
            "experiment",
            0,
            now,
            &format!("```toml\n{experiment_toml}\n```"),
        )?;
        writer.flush()?;
        Ok(Self {
            writer,
            classes,
            last_flush: std::time::Instant::now(),
            broken: false,
        })
    }

    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    fn write(&mut self, event: &Event) -> std::io::Result<()> {
        let time = wall_time(event);
        match &event.kind {
            EventKind::RunStarted(start) => self.classes = start.dataset.classes.clone(),
            EventKind::Epoch(m) => {
                let epoch = event.epoch.unwrap_or(0) as i64;
                write_epoch(&mut self.writer, epoch, time, m, &self.classes)?;
                self.last_flush = std::time::Instant::now();
                return self.writer.flush();
            }
            EventKind::Batch(batch) => {
                let step = event.step.unwrap_or(0) as i64;
                self.writer
                    .scalar("loss/train_step", step, time, batch.loss as f32)?;
            }
            EventKind::HyperParameterChanged {
                parameter,
                from,
                to,
            } => {
                let text = format!(
                    "step {}: {}",
                    event.step.unwrap_or(0),
                    change_text(*parameter, *from, *to)
                );
                self.writer
                    .text("changes", event.epoch.unwrap_or(0) as i64, time, &text)?;
            }
            _ => {}
        }
        if self.last_flush.elapsed() >= LIVE_FLUSH {
            self.last_flush = std::time::Instant::now();
            self.writer.flush()?;
        }
        Ok(())
    }
}

impl crate::tap::Tap for LiveBoard {
    fn observe(&mut self, event: &Event) -> Vec<String> {
        if self.broken {
            return Vec::new();
        }
        match self.write(event) {
            Ok(()) => Vec::new(),
            Err(err) => {
                self.broken = true;
                vec![format!(
                    "{}: {err}; the live TensorBoard file stops here (kiln export --tensorboard \
                     writes it again from the log)",
                    self.path().display()
                )]
            }
        }
    }

    fn finish(self: Box<Self>) -> Vec<String> {
        let path = self.path().display().to_string();
        match self.writer.finish() {
            Err(err) if !self.broken => vec![format!("{path}: {err}")],
            _ => Vec::new(),
        }
    }
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
        let epoch = event.epoch.unwrap_or(i + 1) as i64;
        write_epoch(&mut writer, epoch, wall_time(event), m, &classes).map_err(fail)?;
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
            } => changes.push((event, change_text(*parameter, *from, *to))),
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

/// A change as the `changes` text tag reads it: `dropout 0 → 0.3`, `backbone unfrozen`.
fn change_text(parameter: HyperParameter, from: f64, to: f64) -> String {
    match parameter.switched(to) {
        Some(switched) => switched.to_string(),
        None => format!("{} {from} → {to}", parameter.label()),
    }
}
