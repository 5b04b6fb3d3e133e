//! Tracking servers a team already uses: what of a run they get (its parameters, per-epoch
//! metrics, status and model) read from its events, and [`mlflow`], which sends it to an MLflow
//! server. The run's own log stays the truth: anything a server missed can be sent again from
//! it (`kiln export RUN --mlflow URI`).

pub mod mlflow;

use std::path::{Path, PathBuf};

use crate::protocol::{EpochMetrics, Event, EventKind, Outcome};

/// One thing to tell a tracking server, in the order the run did it.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The run began (or went on, resumed): find or create it, with its parameters.
    Start {
        started_ms: i64,
        params: Vec<(String, String)>,
    },
    /// One epoch's metrics, at the epoch as step.
    Epoch {
        epoch: i64,
        time_ms: i64,
        metrics: Vec<(String, f64)>,
    },
    /// The run ended: `FINISHED`, `KILLED` (stopped, or at a time limit) or `FAILED`.
    End { status: &'static str, time_ms: i64 },
    /// Files to keep with the run: (name on the server, file here).
    Artifacts(Vec<(String, PathBuf)>),
}

/// An experiment's settings as tracking servers list parameters: dotted key and value.
pub fn params_of(experiment_toml: &str) -> Vec<(String, String)> {
    crate::runs::flatten_experiment(experiment_toml)
        .into_iter()
        .collect()
}

/// Where a run's updates go on an MLflow server at `uri`: the experiment's
/// `track.mlflow_experiment`, else its own name.
pub fn destination(
    experiment: &crate::experiment::Experiment,
    kiln_run: &str,
    uri: &str,
) -> mlflow::Destination {
    mlflow::Destination {
        uri: uri.to_string(),
        experiment: experiment
            .track
            .mlflow_experiment
            .clone()
            .unwrap_or_else(|| experiment.name.clone()),
        kiln_run: kiln_run.to_string(),
    }
}

/// Milliseconds since the Unix epoch of an event's time (0 when unreadable).
pub fn time_ms(event: &Event) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&event.time)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// The metrics of an epoch as tracking servers name them; per-class recall as `recall/NAME`.
pub fn epoch_metrics(m: &EpochMetrics, classes: &[String]) -> Vec<(String, f64)> {
    let mut metrics: Vec<(String, f64)> = [
        ("train_loss", m.train_loss),
        ("val_loss", m.validation_loss),
        ("train_accuracy", m.train_accuracy),
        ("val_accuracy", m.validation_accuracy),
        ("gap", m.gap()),
        ("learning_rate", m.learning_rate),
        ("dropout", m.dropout),
        ("images_per_second", m.images_per_second),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(counts) = &m.classes {
        for score in crate::metrics::scores(counts) {
            let name = classes
                .get(score.class)
                .map_or_else(|| score.class.to_string(), |n| sanitise(n));
            metrics.push((format!("recall/{name}"), score.recall));
        }
    }
    // Servers refuse NaN and infinities (a diverged epoch's loss).
    metrics.retain(|(_, v)| v.is_finite());
    metrics
}

/// A name MLflow accepts in a key: letters, digits and `_-. /`; anything else becomes `_`.
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "_-. /".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Turns a run's events into updates, one event at a time.
#[derive(Debug, Clone)]
pub struct Translator {
    run_dir: PathBuf,
    params: Vec<(String, String)>,
    classes: Vec<String>,
    started: bool,
}

impl Translator {
    /// For the run in `run_dir`, whose experiment's settings (dotted key, value) are `params`.
    pub fn new(run_dir: &Path, params: Vec<(String, String)>) -> Self {
        Self {
            run_dir: run_dir.to_path_buf(),
            params,
            classes: Vec::new(),
            started: false,
        }
    }

    /// The updates `event` makes.
    pub fn updates(&mut self, event: &Event) -> Vec<Update> {
        let mut updates = Vec::new();
        let time = time_ms(event);
        if !self.started {
            // The first event of a run or of a resumed one: the server learns of it first.
            self.started = true;
            updates.push(Update::Start {
                started_ms: time,
                params: self.params.clone(),
            });
        }
        match &event.kind {
            EventKind::RunStarted(start) => self.classes = start.dataset.classes.clone(),
            EventKind::Epoch(m) => updates.push(Update::Epoch {
                epoch: event.epoch.unwrap_or(0) as i64,
                time_ms: time,
                metrics: epoch_metrics(m, &self.classes),
            }),
            EventKind::Finished(end) => {
                updates.push(Update::Artifacts(self.model_files()));
                let status = match end.outcome {
                    Outcome::Completed | Outcome::EarlyStopped => "FINISHED",
                    Outcome::Stopped | Outcome::TimeLimit => "KILLED",
                };
                updates.push(Update::End {
                    status,
                    time_ms: time,
                });
            }
            EventKind::Failed { .. } => updates.push(Update::End {
                status: "FAILED",
                time_ms: time,
            }),
            _ => {}
        }
        updates
    }

    /// The run's model as `evaluate` and `predict` need it: the best epoch's weights and state,
    /// the experiment and the normalisation (the optimiser's state stays behind).
    fn model_files(&self) -> Vec<(String, PathBuf)> {
        let best = self.run_dir.join(crate::runs::CHECKPOINTS_DIR).join("best");
        let mut files: Vec<(String, PathBuf)> = ["model.bpk", "state.json"]
            .iter()
            .map(|name| (format!("model/{name}"), best.join(name)))
            .collect();
        for name in [
            crate::runs::EXPERIMENT_FILE,
            crate::runs::PREPROCESSING_FILE,
        ] {
            files.push((format!("model/{name}"), self.run_dir.join(name)));
        }
        files.retain(|(_, path)| path.is_file());
        files
    }
}
