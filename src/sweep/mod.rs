//! Sweeps: the cross product of a few settings, each an ordinary run in the store, grouped by a
//! record in `RUNS/sweeps/<id>.json` that lists the runs and the swept keys. Run locally, at
//! most `--parallel` at a time, each `kiln train --headless` in a process of its own.

mod grid;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::{Deserialize, Serialize};

pub use grid::{Grid, GridError, run_name};

use crate::runs::{self, RunState, SWEEPS_DIR};

/// A sweep as recorded: what it swept and the runs it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub id: String,
    /// The experiment file every run extends.
    pub experiment: String,
    pub keys: Vec<String>,
    pub runs: Vec<SweepRun>,
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

/// What a local sweep runs.
pub struct LocalSweep<'a> {
    pub kiln: &'a Path,
    pub experiment: &'a Path,
    /// The experiment's name, which run names start with.
    pub name: &'a str,
    pub grid: &'a Grid,
    pub runs_dir: &'a Path,
    pub parallel: usize,
    /// `--backend` for every run, when given.
    pub backend: Option<&'a str>,
    /// Extra `--set` overrides for every run.
    pub overrides: &'a [String],
}

/// Runs every combination, at most `parallel` at once, recording each run's id as it starts
/// and its exit code as it ends; `progress` hears one line per start and end.
pub fn run_local(
    sweep: &LocalSweep,
    mut progress: impl FnMut(&str),
) -> std::io::Result<SweepRecord> {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let mut record = SweepRecord {
        id: format!("{stamp}-{}", runs::sanitise(sweep.name)),
        experiment: sweep.experiment.display().to_string(),
        keys: sweep.grid.keys(),
        runs: sweep
            .grid
            .combinations()
            .into_iter()
            .map(|settings| SweepRun {
                name: run_name(sweep.name, &settings),
                run_id: None,
                settings,
                exit_code: None,
                cancelled: false,
            })
            .collect(),
    };
    record.save(sweep.runs_dir)?;
    let mut running: Vec<(usize, Child, std::thread::JoinHandle<String>)> = Vec::new();
    let mut next = 0;
    while next < record.runs.len() || !running.is_empty() {
        if next < record.runs.len()
            && SweepRecord::cancel_marker(sweep.runs_dir, &record.id).exists()
        {
            for run in &mut record.runs[next..] {
                run.cancelled = true;
            }
            progress(&format!(
                "cancelled: {} run(s) not started",
                record.runs.len() - next
            ));
            next = record.runs.len();
            record.save(sweep.runs_dir)?;
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
        record.save(sweep.runs_dir)?;
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

/// `kiln train EXPERIMENT --headless --set …`: one run of the sweep in a process of its own.
fn start(sweep: &LocalSweep, name: &str, settings: &[(String, String)]) -> std::io::Result<Child> {
    let mut command = Command::new(sweep.kiln);
    command
        .arg("train")
        .arg(sweep.experiment)
        .arg("--headless")
        .arg("--runs-dir")
        .arg(sweep.runs_dir);
    if let Some(backend) = sweep.backend {
        command.args(["--backend", backend]);
    }
    for overriding in sweep.overrides {
        command.args(["--set", overriding]);
    }
    for (key, value) in settings {
        command.args(["--set", &format!("{key}={value}")]);
    }
    command.args(["--set", &format!("name=\"{name}\"")]);
    command
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

/// One row of a sweep's table.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub settings: Vec<(String, String)>,
    pub run_id: Option<String>,
    pub state: String,
    pub best_validation_accuracy: Option<f64>,
    pub final_gap: Option<f64>,
}

/// The sweep's runs with their current state and results, best validation accuracy first.
pub fn rows(record: &SweepRecord, runs_dir: &Path) -> Vec<SweepRow> {
    let mut rows: Vec<SweepRow> = record
        .runs
        .iter()
        .map(|run| {
            let id = run
                .run_id
                .clone()
                .or_else(|| find_run(runs_dir, &record.id, &run.name));
            let summary = id
                .as_ref()
                .map(|id| runs::summary_of(&runs_dir.join(id), id));
            SweepRow {
                settings: run.settings.clone(),
                run_id: id,
                state: match (&summary, run.exit_code) {
                    _ if run.cancelled => "cancelled".into(),
                    (Some(s), _) if s.state == RunState::Running => "running".into(),
                    (Some(s), _) => s.state.label().to_string(),
                    (None, Some(_)) => "failed".into(),
                    (None, None) => "pending".into(),
                },
                best_validation_accuracy: summary.as_ref().and_then(|s| s.best_validation_accuracy),
                final_gap: summary.as_ref().and_then(|s| s.final_gap),
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
