//! A sweep handed to Slurm: one `sbatch --array` job, a task per run, its script kept beside
//! the sweep's record so users can read what was submitted.

use std::path::Path;

use super::{RunCommand, SlurmJob, SweepRecord};
use crate::slurm::{self, JobScript, SlurmError};

/// What a Slurm sweep submits.
pub struct SlurmSweep<'a> {
    pub command: RunCommand<'a>,
    /// The experiment's name, which run names start with.
    pub name: &'a str,
    pub grid: &'a super::Grid,
    /// Options for the job script's `#SBATCH` lines (`slurm::options`).
    pub options: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    #[error("cannot write the job script: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes the job script of every combination and submits it (see [`submit_tasks`]).
pub fn submit(sweep: &SlurmSweep) -> Result<SweepRecord, SubmitError> {
    let record = SweepRecord::new(sweep.name, sweep.command.experiment, sweep.grid);
    let tasks = record
        .runs
        .iter()
        .map(|run| sweep.command.arguments(&run.name, &run.settings))
        .collect();
    submit_tasks(record, tasks, &sweep.options, sweep.command.runs_dir)
}

/// Submits `tasks` (task `i` trains `record.runs[i]`) as one array job and saves the record
/// with its job id. Nothing is left behind when sbatch refuses: the script and output folder
/// are removed and no record is saved.
pub fn submit_tasks(
    mut record: SweepRecord,
    tasks: Vec<Vec<String>>,
    options: &[String],
    runs_dir: &Path,
) -> Result<SweepRecord, SubmitError> {
    let sweeps = runs_dir.join(crate::runs::SWEEPS_DIR);
    let script_path = sweeps.join(format!("{}.sbatch", record.id));
    let output_dir = sweeps.join(&record.id);
    let script = JobScript {
        name: format!("kiln-{}", record.id),
        tasks,
        output: output_dir.join("task-%a.out"),
        options: options.to_vec(),
    };
    std::fs::create_dir_all(&output_dir)?;
    std::fs::write(&script_path, script.render())?;
    let job_id = match slurm::submit(&script_path) {
        Ok(id) => id,
        Err(err) => {
            remove_quietly(&script_path, &output_dir);
            return Err(err.into());
        }
    };
    record.slurm = Some(SlurmJob {
        job_id,
        script: script_path,
        output: script.output,
    });
    record.save(runs_dir)?;
    Ok(record)
}

fn remove_quietly(script: &Path, output_dir: &Path) {
    let _ = std::fs::remove_file(script);
    let _ = std::fs::remove_dir_all(output_dir);
}
