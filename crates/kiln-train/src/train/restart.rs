//! Training on from a checkpoint: which checkpoint a resume or a fork starts from, and the
//! experiment it trains with. The rules a user meets as errors (a run still training, a run that
//! finished, an epoch with no checkpoint, a fork with nothing left to train) live here.

use std::path::{Path, PathBuf};

use super::checkpoint::{self, CheckpointState};
use crate::experiment::{self, BackendChoice, ConfigError, Experiment};
use crate::protocol::{EpochMetrics, Event, ParentRun, epoch_history};
use crate::runs::{self, RunDir, RunState, StoreError};

/// A checkpoint to train on from, instead of fresh weights.
#[derive(Debug, Clone)]
pub struct Restart {
    pub checkpoint: PathBuf,
    /// The run the checkpoint belongs to (the run itself when resuming).
    pub source: RunDir,
    /// The per-epoch metrics up to the checkpoint, as that run's log tells them.
    pub history: Vec<EpochMetrics>,
    /// Set for a fork: the new run records its parent and copies the inherited epochs into its
    /// own log. Unset for a resume, which continues its own log.
    pub parent: Option<ParentRun>,
    /// Whether the run keeps the rate in force at the checkpoint (its schedule with the live
    /// changes made to it): always on a resume; on a fork unless it sets `train.learning_rate`
    /// or a `schedule.*` key.
    pub keeps_rate: bool,
}

impl Restart {
    /// A resume continues its own run and log; a fork starts a new run.
    pub fn is_resume(&self) -> bool {
        self.parent.is_none()
    }

    /// The checkpoint's folder relative to its run's directory, as the log names it.
    pub fn checkpoint_in_source(&self) -> String {
        self.checkpoint
            .strip_prefix(&self.source.path)
            .unwrap_or(&self.checkpoint)
            .display()
            .to_string()
    }
}

/// Why a run cannot be resumed or forked as asked. All of these are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{id} is still training; watch it with `kiln attach {id}`")]
    StillTraining { id: String },
    #[error(
        "{id} was started on {host}, and from here kiln cannot tell whether it still trains there \
         (its pid and socket mean nothing on this host); resume it on {host}, or `kiln cancel \
         {id}` there first"
    )]
    Elsewhere { id: String, host: String },
    #[error(
        "{id} finished all {epochs} epochs; to train it further, fork it: \
         kiln fork {id} --set train.epochs=N"
    )]
    Finished { id: String, epochs: usize },
    #[error(
        "{id} has no complete checkpoint to resume from (they are written every \
         train.checkpoint_every epochs); start it again with kiln train"
    )]
    NoCheckpoint { id: String },
    #[error(
        "{id} has no checkpoint {}; it has checkpoints after epoch(s): {}",
        wanted.map_or("at all".to_string(), |e| format!("at the end of epoch {e}")),
        if available.is_empty() { "none".to_string() } else { available.join(", ") }
    )]
    NoSuchCheckpoint {
        id: String,
        wanted: Option<usize>,
        available: Vec<String>,
    },
    #[error(
        "the fork would have nothing to train: train.epochs is {epochs} and it starts after epoch \
         {after}; raise it, e.g. --set train.epochs={}",
        after * 2
    )]
    NothingToTrain { epochs: usize, after: usize },
}

/// What a resume trains: the run's own experiment from its newest checkpoint.
pub struct Resumption {
    pub experiment: Experiment,
    pub experiment_file: PathBuf,
    pub run: RunDir,
    pub restart: Restart,
    /// The run's log so far, for the front end to show before the new events.
    pub events: Vec<Event>,
}

/// Plans the resume of the run in `path`, which must have stopped or been interrupted.
pub fn plan_resume(
    path: PathBuf,
    backend: Option<BackendChoice>,
) -> Result<Resumption, RestartError> {
    let opened = runs::open_run(&path)?;
    let id = opened.summary.id.clone();
    match opened.summary.state {
        RunState::Running => return Err(RestartError::StillTraining { id }),
        RunState::Finished => {
            return Err(RestartError::Finished {
                id,
                epochs: opened.summary.epochs_planned,
            });
        }
        // No final event, on another host: it may still train there, and two trainers on one
        // run directory would interleave its log and checkpoints — unless its Slurm job has
        // ended by Slurm's own word (a node that died, a job killed past its limit).
        RunState::Interrupted
            if let Some(placement) = runs::trains_elsewhere(&path)
                && !placement
                    .slurm_job
                    .as_deref()
                    .is_some_and(crate::slurm::has_ended) =>
        {
            return Err(RestartError::Elsewhere {
                id,
                host: placement.host,
            });
        }
        RunState::Stopped | RunState::Failed | RunState::Interrupted | RunState::TimedOut => {}
    }
    let experiment_file = path.join(runs::EXPERIMENT_FILE);
    let mut experiment = Experiment::load(&experiment_file, &[])?;
    if let Some(backend) = backend {
        experiment.train.backend = backend;
    }
    let (checkpoint, _) = checkpoint::list(&path.join(runs::CHECKPOINTS_DIR))
        .pop()
        .ok_or_else(|| RestartError::NoCheckpoint { id: id.clone() })?;
    let run = RunDir { id, path };
    Ok(Resumption {
        restart: Restart {
            checkpoint,
            source: run.clone(),
            history: epoch_history(&opened.events),
            parent: None,
            keeps_rate: true,
        },
        experiment,
        experiment_file,
        run,
        events: opened.events,
    })
}

/// What a fork asks for besides its parent.
#[derive(Debug, Clone, Default)]
pub struct ForkRequest {
    /// Start from the checkpoint taken at the end of this epoch (default: the newest).
    pub epoch: Option<usize>,
    /// `--set` overrides on the parent's experiment.
    pub overrides: Vec<String>,
    /// Name of the new experiment (default: the parent's with `-fork`).
    pub name: Option<String>,
    pub backend: Option<BackendChoice>,
}

/// What a fork trains: the parent's experiment with the request's changes, from its checkpoint.
pub struct ForkPlan {
    pub experiment: Experiment,
    /// The parent's experiment file, which fixes written during the fork extend.
    pub experiment_file: PathBuf,
    pub restart: Restart,
}

/// Plans a fork of the run in `path`.
pub fn plan_fork(path: PathBuf, request: &ForkRequest) -> Result<ForkPlan, RestartError> {
    let opened = runs::open_run(&path)?;
    let parent = opened.summary.id.clone();
    let (checkpoint, state) = fork_point(&path, &parent, request.epoch)?;
    let experiment_file = path.join(runs::EXPERIMENT_FILE);
    let mut experiment = Experiment::load(&experiment_file, &request.overrides)?;
    // The fork goes on with the values in force at the checkpoint unless told otherwise.
    let overridden = experiment::override_keys(&request.overrides);
    if !overridden.contains(&"model.dropout") {
        experiment.model.dropout = state.dropout;
    }
    if let Some(backend) = request.backend {
        experiment.train.backend = backend;
    }
    experiment.name = request
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-fork", experiment.name));
    if experiment.train.epochs <= state.epochs_completed {
        return Err(RestartError::NothingToTrain {
            epochs: experiment.train.epochs,
            after: state.epochs_completed,
        });
    }
    let restart = Restart {
        checkpoint,
        source: RunDir {
            id: parent.clone(),
            path,
        },
        history: epoch_history(&opened.events),
        parent: Some(ParentRun {
            run_id: parent,
            epoch: state.epochs_completed,
        }),
        keeps_rate: !overridden
            .iter()
            .any(|key| *key == "train.learning_rate" || key.starts_with("schedule.")),
    };
    Ok(ForkPlan {
        experiment,
        experiment_file,
        restart,
    })
}

/// The checkpoint taken at the end of `epoch` (the newest of them), or the newest of all.
fn fork_point(
    run: &Path,
    id: &str,
    epoch: Option<usize>,
) -> Result<(PathBuf, CheckpointState), RestartError> {
    let checkpoints = checkpoint::list(&run.join(runs::CHECKPOINTS_DIR));
    let at_epoch_end = |state: &CheckpointState| state.batches_done == 0;
    let chosen = match epoch {
        Some(epoch) => checkpoints
            .iter()
            .rev()
            .find(|(_, s)| s.epochs_completed == epoch && at_epoch_end(s))
            .cloned(),
        None => checkpoints.last().cloned(),
    };
    chosen.ok_or_else(|| {
        let mut available: Vec<String> = checkpoints
            .iter()
            .filter(|(_, s)| at_epoch_end(s))
            .map(|(_, s)| s.epochs_completed.to_string())
            .collect();
        available.dedup();
        RestartError::NoSuchCheckpoint {
            id: id.to_string(),
            wanted: epoch,
            available,
        }
    })
}
