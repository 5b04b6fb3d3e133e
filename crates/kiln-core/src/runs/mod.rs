//! The run store: run directories and their layout, the event log, summaries for listing, and
//! exports. Runs are read back only through their event logs.

mod compare;
mod export;
mod liveness;
mod log;
mod store;
mod summary;
mod tensorboard;

use std::io;
use std::path::{Path, PathBuf};

pub use compare::{differing_settings, flatten_experiment};
pub use export::{ExportError, PNG_SIZE, export_classes_csv, export_csv, export_png};
pub use liveness::{
    Endpoint, SOCKET_FILE, claimed_by, is_alive, pid_is_running, probe, trains_elsewhere,
};
pub use log::{
    EventLog, LogContents, read_events, read_events_after, read_events_prefix,
    read_events_without_batches,
};
pub use store::{
    Listing, OpenedRun, StoreError, delete_run, disk_bytes, forked_epochs, list_runs, open_run,
    rename_run, resolve_run, summary_of,
};
pub use summary::{RunState, RunSummary, summarise};
pub use tensorboard::{LiveBoard, export_tensorboard};

pub const EVENTS_FILE: &str = "events.jsonl";
pub const EXPERIMENT_FILE: &str = "experiment.toml";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// What the model expects of an image (`data::Preprocessing`), for evaluate and predict.
pub const PREPROCESSING_FILE: &str = "preprocessing.json";
/// Sweep records (`sweep::SweepRecord`), one JSON file each, beside the run directories.
pub const SWEEPS_DIR: &str = "sweeps";
/// Present while a process trains into the run; holds that process's id.
pub const PID_FILE: &str = "kiln.pid";
/// Cached summary for fast listing, rebuilt from the log when missing or stale.
pub const SUMMARY_FILE: &str = "summary.json";

/// `runs/<run-id>/`, where the id is `<UTC yyyymmdd-HHMMSS>-<experiment name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory under `runs_dir` (made if missing). Two runs started in the
    /// same second get `-2`, `-3`, … suffixes rather than sharing a directory.
    pub fn create(runs_dir: &Path, experiment_name: &str) -> io::Result<RunDir> {
        std::fs::create_dir_all(runs_dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let base = format!("{stamp}-{}", sanitise(experiment_name));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = if attempt == 1 {
                base.clone()
            } else {
                format!("{base}-{attempt}")
            };
            let path = runs_dir.join(&id);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    std::fs::create_dir(path.join(CHECKPOINTS_DIR))?;
                    return Ok(RunDir { id, path });
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
    }

    pub fn events_path(&self) -> PathBuf {
        self.path.join(EVENTS_FILE)
    }

    pub fn experiment_path(&self) -> PathBuf {
        self.path.join(EXPERIMENT_FILE)
    }

    pub fn checkpoints_path(&self) -> PathBuf {
        self.path.join(CHECKPOINTS_DIR)
    }

    /// Marks the run as being trained by this process (see [`RunState::Running`]); refuses
    /// when another live process trains it already. The pid file is created exclusively, so of
    /// two processes claiming the same run at once only one succeeds.
    pub fn claim(&self) -> io::Result<()> {
        use std::io::Write;
        let pid_file = self.path.join(PID_FILE);
        let me = std::process::id().to_string();
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&pid_file)
            {
                Ok(mut file) => return writeln!(file, "{me}"),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&pid_file).unwrap_or_default();
                    let owner = owner.trim();
                    if owner == me {
                        return Ok(());
                    }
                    if owner.is_empty() {
                        // Created, not yet written: another process is claiming it this moment.
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!(
                                "run {} is being claimed by another process (if none is, \
                                 remove the empty {})",
                                self.id,
                                pid_file.display()
                            ),
                        ));
                    }
                    if is_alive(&self.path) {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!(
                                "run {} is being trained by process {owner}; watch it with \
                                 `kiln attach {}`",
                                self.id, self.id
                            ),
                        ));
                    }
                    // Left by a process that died: not a claim any more.
                    let _ = std::fs::remove_file(&pid_file);
                }
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("run {} is being claimed by another process", self.id),
        ))
    }

    /// Removes the mark once the run has ended.
    pub fn release(&self) {
        let _ = std::fs::remove_file(self.path.join(PID_FILE));
    }
}

/// Keeps letters, digits, `-`, `_` and `.`; anything else becomes `-`.
pub fn sanitise(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        "run".to_string()
    } else {
        trimmed.to_string()
    }
}
