//! Retention for a run on disk (`kiln prune`): which of its checkpoints its policy lets go,
//! judged from its experiment, its log and the runs forked from it, as the trainer judges it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::checkpoint::{self, Retention};
use crate::experiment::Experiment;
use crate::protocol::EventKind;
use crate::runs::{self, RunState, StoreError};

/// What pruning one run would do.
#[derive(Debug, Clone, PartialEq)]
pub struct PrunePlan {
    pub run_id: String,
    /// Checkpoint folders to remove, with their size in bytes.
    pub remove: Vec<(PathBuf, u64)>,
    /// Checkpoints that stay.
    pub kept: usize,
}

impl PrunePlan {
    pub fn bytes(&self) -> u64 {
        self.remove.iter().map(|(_, bytes)| bytes).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} is still training: its trainer prunes its checkpoints itself")]
    Running(String),
}

/// The plan for the run in `path`: the newest `keep` routine checkpoints (its experiment's
/// `train.keep_checkpoints` when `None`), plus those taken by hand, the best epoch's, those its
/// forks started from and the ones it was resumed from.
pub fn plan(path: &Path, keep: Option<usize>) -> Result<PrunePlan, PruneError> {
    let opened = runs::open_run(path)?;
    let id = opened.summary.id.clone();
    if opened.summary.state == RunState::Running {
        return Err(PruneError::Running(id));
    }
    let configured = Experiment::from_toml(
        &std::fs::read_to_string(path.join(runs::EXPERIMENT_FILE)).unwrap_or_default(),
    )
    .map(|e| e.train.keep_checkpoints)
    .unwrap_or_default();
    let mut epochs: BTreeSet<usize> = opened.summary.best_epoch.into_iter().collect();
    if let Some(runs_dir) = path.parent() {
        epochs.extend(runs::forked_epochs(runs_dir, &id));
    }
    let names = opened
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::FromCheckpoint(from) if from.run_id == id => Path::new(&from.checkpoint)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let retention = Retention {
        newest: keep.unwrap_or(configured),
        epochs,
        names,
    };
    let found = checkpoint::list(&path.join(runs::CHECKPOINTS_DIR));
    let remove: Vec<(PathBuf, u64)> = checkpoint::to_prune(&found, &retention)
        .into_iter()
        .map(|dir| {
            let bytes = folder_bytes(&dir);
            (dir, bytes)
        })
        .collect();
    Ok(PrunePlan {
        run_id: id,
        kept: found.len() - remove.len(),
        remove,
    })
}

/// Carries a plan out.
pub fn apply(plan: &PrunePlan) -> std::io::Result<()> {
    for (dir, _) in &plan.remove {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
