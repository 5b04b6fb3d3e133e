//! Sweeps: the cross product of a few settings, each an ordinary run in the store, grouped by a
//! record in `RUNS/sweeps/<id>.json` that lists the runs and the swept keys. Run locally, at
//! most `--parallel` at a time, each `kiln train --headless` in a process of its own.

mod grid;
mod submit;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

pub use grid::{Grid, GridError, run_name};
pub use submit::{SlurmSweep, SubmitError, submit, submit_tasks};

use crate::runs::{self, RunState, SWEEPS_DIR};
use crate::slurm::{self, TaskState};

/// A sweep as recorded: what it swept and the runs it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub id: String,
    /// The experiment file every run extends.
    pub experiment: String,
    pub keys: Vec<String>,
    pub runs: Vec<SweepRun>,
    /// The Slurm array job when the sweep went to a cluster (task `i` trains `runs[i]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmJob>,
    /// Set when the runs are the tricks ladder's rungs (`kiln ladder --slurm`): the validation
    /// accuracy its table counts epochs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder_target: Option<f64>,
}

/// The array job a sweep was submitted as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmJob {
    pub job_id: String,
    /// The job script kiln wrote (beside the record) and sbatch read.
    pub script: PathBuf,
    /// Each task's output file; `%a` stands for the task index.
    pub output: PathBuf,
}

impl SlurmJob {
    /// Slurm's name of task `index`: `JOB_INDEX`.
    pub fn task(&self, index: usize) -> String {
        format!("{}_{index}", self.job_id)
    }

    pub fn output_of(&self, index: usize) -> PathBuf {
        PathBuf::from(
            self.output
                .display()
                .to_string()
                .replace("%a", &index.to_string()),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRun {
    /// The experiment name the run trains under (its id is `<time>-<name>`).
    pub name: String,
    /// The run's id in the store, once known.
    pub run_id: Option<String>,
    /// The swept settings (dotted key, TOML value), in the order of `keys`.
    pub settings: Vec<(String, String)>,
    /// The process's exit code once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Never started: the sweep was cancelled first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

impl SweepRecord {
    /// A new sweep of `grid` over `experiment`: one run per combination, none started.
    pub fn new(name: &str, experiment: &Path, grid: &Grid) -> Self {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        SweepRecord {
            id: format!("{stamp}-{}", runs::sanitise(name)),
            experiment: experiment.display().to_string(),
            keys: grid.keys(),
            runs: grid
                .combinations()
                .into_iter()
                .map(|settings| SweepRun {
                    name: run_name(name, &settings),
                    run_id: None,
                    settings,
                    exit_code: None,
                    cancelled: false,
                })
                .collect(),
            slurm: None,
            ladder_target: None,
        }
    }

    pub fn path(runs_dir: &Path, id: &str) -> PathBuf {
        runs_dir.join(SWEEPS_DIR).join(format!("{id}.json"))
    }

    pub fn save(&self, runs_dir: &Path) -> std::io::Result<()> {
        let path = Self::path(runs_dir, &self.id);
        std::fs::create_dir_all(path.parent().expect("a sweeps folder"))?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(temporary, path)
    }

    /// The file `kiln cancel` leaves for a sweep: no further run of it starts.
    pub fn cancel_marker(runs_dir: &Path, id: &str) -> PathBuf {
        runs_dir.join(SWEEPS_DIR).join(format!("{id}.cancel"))
    }

    pub fn load(runs_dir: &Path, id: &str) -> Result<Self, String> {
        let path = Self::path(runs_dir, id);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The sweep ids in `runs_dir`, oldest first.
pub fn list(runs_dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(runs_dir.join(SWEEPS_DIR))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".json").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// How each run of a sweep is started: `kiln train EXPERIMENT --headless --set …`, the same
/// command whether a local process or a Slurm task runs it.
pub struct RunCommand<'a> {
    pub kiln: &'a Path,
    pub experiment: &'a Path,
    pub runs_dir: &'a Path,
    /// `--backend` for every run, when given.
    pub backend: Option<&'a str>,
    /// Extra `--set` overrides for every run.
    pub overrides: &'a [String],
}

impl RunCommand<'_> {
    /// The command line of the run `name` with `settings`, program first.
    pub fn arguments(&self, name: &str, settings: &[(String, String)]) -> Vec<String> {
        let mut argv: Vec<String> = vec![
            self.kiln.display().to_string(),
            "train".into(),
            self.experiment.display().to_string(),
            "--headless".into(),
            "--runs-dir".into(),
            self.runs_dir.display().to_string(),
        ];
        if let Some(backend) = self.backend {
            argv.extend(["--backend".into(), backend.to_string()]);
        }
        let sets = self
            .overrides
            .iter()
            .cloned()
            .chain(settings.iter().map(|(key, value)| format!("{key}={value}")))
            .chain([format!("name=\"{name}\"")]);
        for setting in sets {
            argv.extend(["--set".into(), setting]);
        }
        argv
    }
}

/// What a local sweep runs.
pub struct LocalSweep<'a> {
    pub command: RunCommand<'a>,
    /// The experiment's name, which run names start with.
    pub name: &'a str,
    pub grid: &'a Grid,
    pub parallel: usize,
}

/// Runs every combination, at most `parallel` at once, recording each run's id as it starts
/// and its exit code as it ends; `progress` hears one line per start and end.
pub fn run_local(
    sweep: &LocalSweep,
    mut progress: impl FnMut(&str),
) -> std::io::Result<SweepRecord> {
    let mut record = SweepRecord::new(sweep.name, sweep.command.experiment, sweep.grid);
    record.save(sweep.command.runs_dir)?;
    let mut running: Vec<(usize, Child, std::thread::JoinHandle<String>)> = Vec::new();
    let mut next = 0;
    while next < record.runs.len() || !running.is_empty() {
        if next < record.runs.len()
            && SweepRecord::cancel_marker(sweep.command.runs_dir, &record.id).exists()
        {
            for run in &mut record.runs[next..] {
                run.cancelled = true;
            }
            progress(&format!(
                "cancelled: {} run(s) not started",
                record.runs.len() - next
            ));
            next = record.runs.len();
            record.save(sweep.command.runs_dir)?;
        }
        if running.is_empty() && next == record.runs.len() {
            break;
        }
        while next < record.runs.len() && running.len() < sweep.parallel.max(1) {
            let run = &record.runs[next];
            let mut child = start(sweep, &run.name, &run.settings)?;
            let output = drain(&mut child);
            progress(&format!(
                "started {} ({})",
                run.name,
                describe(&run.settings)
            ));
            running.push((next, child, output));
            next += 1;
        }
        // Wait for the oldest; the others go on meanwhile.
        let (index, mut child, output) = running.remove(0);
        let status = child.wait()?;
        let output = output.join().unwrap_or_default();
        let run = &mut record.runs[index];
        run.exit_code = status.code();
        run.run_id = output
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("run: "))
            .and_then(|path| Path::new(path.trim()).file_name())
            .map(|name| name.to_string_lossy().into_owned());
        progress(&format!(
            "ended {} ({}): {}",
            run.run_id.as_deref().unwrap_or(&run.name),
            describe(&run.settings),
            if status.success() { "ok" } else { "failed" }
        ));
        record.save(sweep.command.runs_dir)?;
    }
    Ok(record)
}

/// The child's standard output, read to its end on a thread (so it never blocks on a full
/// pipe) and handed back when joined.
fn drain(child: &mut Child) -> std::thread::JoinHandle<String> {
    let stdout = child.stdout.take();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stdout) = stdout {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        }
        text
    })
}

fn describe(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One run of the sweep in a process of its own.
fn start(sweep: &LocalSweep, name: &str, settings: &[(String, String)]) -> std::io::Result<Child> {
    let argv = sweep.command.arguments(name, settings);
    Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
}

/// A run still training has no id in the record yet: the newest run named `name` started at or
/// after the sweep (ids begin with their start time, as the sweep's does).
fn find_run(runs_dir: &Path, sweep_id: &str, name: &str) -> Option<String> {
    let suffix = format!("-{}", runs::sanitise(name));
    let since = sweep_id.get(..15)?;
    let mut found: Vec<String> = std::fs::read_dir(runs_dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|id| id.ends_with(&suffix) && id.get(..15).is_some_and(|t| t >= since))
        .collect();
    found.sort();
    found.pop()
}

/// The id of one of the sweep's runs: recorded when its process ended, else found by name.
fn run_id(record: &SweepRecord, run: &SweepRun, runs_dir: &Path) -> Option<String> {
    run.run_id
        .clone()
        .or_else(|| find_run(runs_dir, &record.id, &run.name))
}

/// Whether run `id` is one of the sweep's (from the store alone: Slurm is not asked).
pub fn holds(record: &SweepRecord, id: &str, runs_dir: &Path) -> bool {
    record
        .runs
        .iter()
        .any(|run| run_id(record, run, runs_dir).as_deref() == Some(id))
}

/// One row of a sweep's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub settings: Vec<(String, String)>,
    pub run_id: Option<String>,
    pub state: String,
    pub best_validation_accuracy: Option<f64>,
    pub final_gap: Option<f64>,
    /// The Slurm array task that trains it (a Slurm sweep only).
    pub task: Option<usize>,
}

/// The sweep's runs with their current state and results, best validation accuracy first.
/// A Slurm sweep's states come from one `squeue` call and the runs' logs.
pub fn rows(record: &SweepRecord, runs_dir: &Path) -> Vec<SweepRow> {
    let tasks = record.slurm.as_ref().map(|job| {
        // Without Slurm's tools here (reviewing elsewhere), the logs alone tell the state.
        slurm::task_states(&job.job_id).unwrap_or_default()
    });
    let mut rows: Vec<SweepRow> = record
        .runs
        .iter()
        .enumerate()
        .map(|(index, run)| {
            let id = run_id(record, run, runs_dir);
            let summary = id
                .as_ref()
                .map(|id| runs::summary_of(&runs_dir.join(id), id));
            let state = match &tasks {
                _ if run.cancelled => "cancelled".into(),
                Some(tasks) => slurm_state(summary.as_ref(), tasks, index),
                None => match (&summary, run.exit_code) {
                    (Some(s), _) => s.state.label().to_string(),
                    (None, Some(_)) => "failed".into(),
                    (None, None) => "pending".into(),
                },
            };
            SweepRow {
                settings: run.settings.clone(),
                run_id: id,
                state,
                best_validation_accuracy: summary.as_ref().and_then(|s| s.best_validation_accuracy),
                final_gap: summary.as_ref().and_then(|s| s.final_gap),
                task: record.slurm.as_ref().map(|_| index),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.best_validation_accuracy
            .unwrap_or(-1.0)
            .total_cmp(&a.best_validation_accuracy.unwrap_or(-1.0))
    });
    rows
}

/// A Slurm task's state: the scheduler's word while it waits, runs or was ended by it (cancelled,
/// time limit); the run's own log for how training ended.
fn slurm_state(
    summary: Option<&runs::RunSummary>,
    tasks: &std::collections::BTreeMap<usize, TaskState>,
    index: usize,
) -> String {
    let task = tasks.get(&index);
    match (task, summary) {
        (Some(t), _) if t.state == "CANCELLED" => "cancelled".into(),
        // Waiting: a resumed run's log still ends as it did before.
        (Some(t), _) if t.is_pending() => t.label(),
        (Some(t), Some(s))
            if t.is_running() && matches!(s.state, RunState::Running | RunState::Interrupted) =>
        {
            t.label()
        }
        // A run on another node reads as interrupted here (its process is not ours to see).
        (Some(t), Some(s)) if t.state == "TIMEOUT" && s.state == RunState::Interrupted => t.label(),
        (_, Some(s)) => s.state.label().to_string(),
        (Some(t), None) if t.is_running() => format!("starting ({})", t.detail),
        (Some(t), None) if t.state == "TIMEOUT" => t.label(),
        (Some(_), None) => "failed".into(),
        // Slurm drops a task cancelled before it started from a job it still reports.
        (None, None) if !tasks.is_empty() => "cancelled".into(),
        (None, None) => "unknown".into(),
    }
}
