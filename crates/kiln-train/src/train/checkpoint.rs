//! Checkpoints: model and optimiser state plus where the run stood. Written new-then-rename:
//! the new one complete and synced in a hidden folder first, an old one of the same name moved
//! aside (not deleted) until the new one has its name, so a crash at any step leaves one
//! complete checkpoint under that name or beside it, never a half-written one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::experiment::ModelConfig;
use crate::model::{Classifier, ModelShape};

pub const MODEL_FILE: &str = "model.bpk";
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
pub const STATE_FILE: &str = "state.json";
/// The folder that keeps the best epoch's weights (`train.best_metric`), beside the routine
/// checkpoints and never pruned with them.
pub const BEST: &str = "best";

/// Where the run stood when the checkpoint was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Epochs fully trained and evaluated.
    pub epochs_completed: usize,
    /// The epoch in progress (equal to `epochs_completed` at an epoch boundary).
    pub epoch: usize,
    /// Batches of `epoch` trained when it was taken mid-epoch (0 at an epoch boundary).
    #[serde(default)]
    pub batches_done: usize,
    pub step: u64,
    /// The rate in force: the schedule's rate times `lr_scale`.
    pub learning_rate: f64,
    /// The factor live changes put on the schedule (1 without any); absent in checkpoints from
    /// before schedules, where it is the rate in force over the (constant) base rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_scale: Option<f64>,
    pub dropout: f64,
    /// The backbone frozen (`true`) or unfrozen by hand (`b`): it stays so, over
    /// `model.freeze_epochs`. Absent while the experiment's freeze epochs decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone_frozen_by_hand: Option<bool>,
    /// Taken by hand (`c`): kept whatever the retention policy says.
    #[serde(default)]
    pub requested: bool,
}

/// Which checkpoints a run keeps besides its newest routine ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retention {
    /// Routine checkpoints to keep, newest first; 0 keeps them all.
    pub newest: usize,
    /// Epochs whose end-of-epoch checkpoint stays (the best epoch, those forks started from).
    pub epochs: BTreeSet<usize>,
    /// Checkpoint folder names that stay (the one a resume started from).
    pub names: BTreeSet<String>,
}

/// The checkpoints (as [`list`] gives them, oldest first) that `retention` lets go.
pub fn to_prune(found: &[(PathBuf, CheckpointState)], retention: &Retention) -> Vec<PathBuf> {
    if retention.newest == 0 {
        return Vec::new();
    }
    let routine: Vec<&(PathBuf, CheckpointState)> =
        found.iter().filter(|(_, s)| !s.requested).collect();
    let old = routine.len().saturating_sub(retention.newest);
    routine[..old]
        .iter()
        .filter(|(path, state)| {
            let named = path
                .file_name()
                .is_some_and(|n| retention.names.contains(&*n.to_string_lossy()));
            let kept_epoch =
                state.batches_done == 0 && retention.epochs.contains(&state.epochs_completed);
            !named && !kept_epoch
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// Removes the checkpoints `retention` lets go; returns them.
pub fn prune(checkpoints: &Path, retention: &Retention) -> Result<Vec<PathBuf>, CheckpointError> {
    let doomed = to_prune(&list(checkpoints), retention);
    for path in &doomed {
        std::fs::remove_dir_all(path).map_err(io(path))?;
    }
    Ok(doomed)
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Record { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn record(path: &Path) -> impl FnOnce(burn::store::RecordError) -> CheckpointError + '_ {
    move |err| CheckpointError::Record {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

/// Prefix of a checkpoint still being written: never loaded, removed on resume.
const TEMPORARY: &str = ".tmp-";
/// Prefix of a checkpoint being replaced: complete, and the one to use if its replacement
/// never got its name.
const REPLACED: &str = ".old-";

/// The steps of [`write`], for a test that stops between them as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// The new checkpoint is complete and synced under its temporary name.
    Written,
    /// An old checkpoint of the same name has been moved aside.
    OldMovedAside,
    /// The new checkpoint has its name; the old one is not removed yet.
    Renamed,
}

impl WriteStep {
    /// Its name for [`CRASH_AFTER_ENV`].
    pub fn name(self) -> &'static str {
        match self {
            WriteStep::Written => "written",
            WriteStep::OldMovedAside => "old-moved-aside",
            WriteStep::Renamed => "renamed",
        }
    }
}

/// Set to a step's name, makes the process abort right after that step of a write that
/// replaces a checkpoint: the crash drill the tests run on a real process.
pub const CRASH_AFTER_ENV: &str = "KILN_CRASH_AFTER";

fn crash_drill(step: WriteStep, replacing: bool) {
    if replacing && std::env::var(CRASH_AFTER_ENV).is_ok_and(|value| value == step.name()) {
        std::process::abort();
    }
}

/// Writes `checkpoints/epoch-EEEE-step-SSSSSSS/` and returns its path.
pub fn write(
    checkpoints: &Path,
    model: &Classifier,
    optimizer: &ModuleOptimizer,
    state: &CheckpointState,
) -> Result<PathBuf, CheckpointError> {
    write_until(checkpoints, model, optimizer, state, None)
}

/// Writes (or replaces) `checkpoints/best/`.
pub fn write_best(
    checkpoints: &Path,
    model: &Classifier,
    optimizer: &ModuleOptimizer,
    state: &CheckpointState,
) -> Result<PathBuf, CheckpointError> {
    write_named(checkpoints, BEST, model, optimizer, state, None)
}

/// [`write`], stopping right after `crash_after` as if the process had died there (returns the
/// path the checkpoint would have).
pub fn write_until(
    checkpoints: &Path,
    model: &Classifier,
    optimizer: &ModuleOptimizer,
    state: &CheckpointState,
    crash_after: Option<WriteStep>,
) -> Result<PathBuf, CheckpointError> {
    let name = format!("epoch-{:04}-step-{:07}", state.epoch, state.step);
    write_named(checkpoints, &name, model, optimizer, state, crash_after)
}

fn write_named(
    checkpoints: &Path,
    name: &str,
    model: &Classifier,
    optimizer: &ModuleOptimizer,
    state: &CheckpointState,
    crash_after: Option<WriteStep>,
) -> Result<PathBuf, CheckpointError> {
    let target = checkpoints.join(name);
    let temporary = checkpoints.join(format!("{TEMPORARY}{name}"));
    let replaced = checkpoints.join(format!("{REPLACED}{name}"));
    let had_old = target.exists();
    // A test's stop (`crash_after`) or the process drill, after each step.
    let stop_after = |step| {
        crash_drill(step, had_old);
        crash_after == Some(step)
    };
    if temporary.exists() {
        std::fs::remove_dir_all(&temporary).map_err(io(&temporary))?;
    }
    std::fs::create_dir_all(&temporary).map_err(io(&temporary))?;

    let model_path = temporary.join(MODEL_FILE);
    model
        .clone()
        .into_record()
        .save(&model_path)
        .map_err(record(&model_path))?;
    let optimizer_path = temporary.join(OPTIMIZER_FILE);
    optimizer
        .to_record()
        .save(&optimizer_path)
        .map_err(record(&optimizer_path))?;
    let state_path = temporary.join(STATE_FILE);
    let json = serde_json::to_vec_pretty(state).map_err(|err| io(&state_path)(err.into()))?;
    std::fs::write(&state_path, json).map_err(io(&state_path))?;
    for file in [&model_path, &optimizer_path, &state_path] {
        sync(file)?;
    }
    sync(&temporary)?;
    if stop_after(WriteStep::Written) {
        return Ok(target);
    }

    // A directory cannot be renamed over a non-empty one: the old one steps aside first.
    if had_old {
        if replaced.exists() {
            std::fs::remove_dir_all(&replaced).map_err(io(&replaced))?;
        }
        std::fs::rename(&target, &replaced).map_err(io(&target))?;
        sync(checkpoints)?;
    }
    if stop_after(WriteStep::OldMovedAside) {
        return Ok(target);
    }
    std::fs::rename(&temporary, &target).map_err(io(&target))?;
    sync(checkpoints)?;
    if stop_after(WriteStep::Renamed) {
        return Ok(target);
    }
    if had_old {
        std::fs::remove_dir_all(&replaced).map_err(io(&replaced))?;
    }
    Ok(target)
}

/// Flushes a file's or a folder's contents (a folder's: its entries) to the disk.
fn sync(path: &Path) -> Result<(), CheckpointError> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(io(path))
}

/// Rebuilds the model saved in a checkpoint folder.
pub fn load_model(
    checkpoint: &Path,
    config: &ModelConfig,
    shape: ModelShape,
    device: &Device,
) -> Result<Classifier, CheckpointError> {
    let mut model = load_weights(checkpoint, Classifier::new(config, shape, device))?;
    if let Ok(state) = load_state(checkpoint) {
        model.set_dropout(state.dropout);
    }
    Ok(model)
}

/// Restores optimiser state (e.g. Adam's moments) saved in a checkpoint folder.
pub fn load_optimizer(
    checkpoint: &Path,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, CheckpointError> {
    let path = checkpoint.join(OPTIMIZER_FILE);
    let saved = OptimizerRecord::load(&path).map_err(record(&path))?;
    Ok(optimizer.load_record(saved))
}

pub fn load_state(checkpoint: &Path) -> Result<CheckpointState, CheckpointError> {
    let path = checkpoint.join(STATE_FILE);
    let text = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&text).map_err(|err| io(&path)(err.into()))
}

/// The best epoch's checkpoint, if the run has one: `best/`, or the one it replaces if a crash
/// came between the two renames.
pub fn best(checkpoints: &Path) -> Option<(PathBuf, CheckpointState)> {
    [BEST.to_string(), format!("{REPLACED}{BEST}")]
        .into_iter()
        .map(|name| checkpoints.join(name))
        .filter(|path| path.join(MODEL_FILE).is_file())
        .find_map(|path| load_state(&path).ok().map(|state| (path, state)))
}

/// The routine and requested checkpoints in a run's `checkpoints/` folder, oldest first. Folders still being
/// written (`.tmp-*`) or without a readable state are not checkpoints; one being replaced
/// (`.old-*`) is, while its replacement has not got its name.
pub fn list(checkpoints: &Path) -> Vec<(PathBuf, CheckpointState)> {
    let Ok(entries) = std::fs::read_dir(checkpoints) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, CheckpointState)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let usable = match name.strip_prefix(REPLACED) {
                Some(original) => original != BEST && !checkpoints.join(original).exists(),
                None => !name.starts_with('.') && name != BEST,
            };
            usable && path.join(MODEL_FILE).is_file()
        })
        .filter_map(|path| load_state(&path).ok().map(|state| (path, state)))
        .collect();
    found.sort_by_key(|(_, state)| (state.step, state.epochs_completed));
    found
}

/// Loads the weights saved in `checkpoint` into `model`, which must have the same layers.
pub fn load_weights(checkpoint: &Path, model: Classifier) -> Result<Classifier, CheckpointError> {
    let path = checkpoint.join(MODEL_FILE);
    let saved = ModuleRecord::load(&path).map_err(record(&path))?;
    model
        .try_load_record(saved)
        .map_err(|err| CheckpointError::Record {
            path: path.clone(),
            message: format!(
                "{err} (the model's layers must match the checkpoint's: a fork can change \
             training settings, not model.conv_channels, model.dense or model.batch_norm)"
            ),
        })
}

/// Tidies what a killed process left mid-write: half-written folders (`.tmp-*`) go; a
/// checkpoint moved aside (`.old-*`) gets its name back if its replacement never got it, and
/// goes if it did.
pub fn remove_partial(checkpoints: &Path) {
    let Ok(entries) = std::fs::read_dir(checkpoints) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TEMPORARY) {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if let Some(original) = name.strip_prefix(REPLACED) {
            let original = checkpoints.join(original);
            if original.exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            } else {
                let _ = std::fs::rename(entry.path(), original);
            }
        }
    }
}
