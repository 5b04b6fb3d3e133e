//! Handing runs to a Slurm cluster: the `sbatch --array` job script (one task per run, each a
//! kiln command line), its submission, and `scancel`. kiln schedules nothing itself; what the
//! tasks do once started is ordinary kiln.

mod state;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use state::{TaskState, has_ended, is_running, parse_squeue, task_states};

use crate::experiment::SlurmConfig;

/// Seconds before the time limit at which Slurm warns a run (SIGUSR1) unless `[slurm]` says.
pub const DEFAULT_SIGNAL_SECONDS: usize = 120;

/// Why a job could not be handed to Slurm, or a task not cancelled.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(
        "`{tool}` is not on PATH: --slurm needs Slurm's client tools (run kiln on the cluster's login node)"
    )]
    Missing { tool: &'static str },
    #[error("{tool} refused the job: {message}")]
    Refused { tool: &'static str, message: String },
    #[error("cannot run {tool}: {source}")]
    Io {
        tool: &'static str,
        source: std::io::Error,
    },
}

/// An array job: one command line per task, and the `#SBATCH` options every task shares.
#[derive(Debug, Clone, PartialEq)]
pub struct JobScript {
    pub name: String,
    /// Each task's command line, program first; task `i` runs `tasks[i]`.
    pub tasks: Vec<Vec<String>>,
    /// `%a` is the task index (sbatch's own pattern).
    pub output: PathBuf,
    /// Options for `#SBATCH` lines, each a whole option (`--partition=gpu`).
    pub options: Vec<String>,
}

/// The options a `[slurm]` table asks for, then `extra` (`--sbatch` arguments) as given.
pub fn options(config: &SlurmConfig, extra: &[String]) -> Vec<String> {
    let mut options = Vec::new();
    let mut push = |flag: &str, value: Option<String>| {
        if let Some(value) = value {
            options.push(format!("--{flag}={value}"));
        }
    };
    push("partition", config.partition.clone());
    push("account", config.account.clone());
    push("time", config.time.clone());
    push("gpus", config.gpus.map(|g| g.to_string()));
    push("cpus-per-task", config.cpus_per_task.map(|c| c.to_string()));
    push("mem", config.mem.clone());
    // B: the batch shell itself, which `exec`s kiln: the signal reaches the trainer.
    let warning = config.signal_seconds.unwrap_or(DEFAULT_SIGNAL_SECONDS);
    options.push(format!("--signal=B:USR1@{warning}"));
    options.extend(config.extra.iter().cloned());
    options.extend(extra.iter().cloned());
    options
}

impl JobScript {
    /// The script as sbatch reads it (and a user does): the options, then one `case` branch per
    /// task that `exec`s its kiln command, so signals go straight to kiln.
    pub fn render(&self) -> String {
        let mut text = String::from("#!/bin/bash\n");
        text.push_str(&format!("#SBATCH --job-name={}\n", self.name));
        text.push_str(&format!(
            "#SBATCH --array=0-{}\n",
            self.tasks.len().max(1) - 1
        ));
        text.push_str(&format!("#SBATCH --output={}\n", self.output.display()));
        for option in &self.options {
            text.push_str(&format!("#SBATCH {option}\n"));
        }
        text.push_str(
            "# Written by kiln: one array task per run. Each task trains with `kiln … --headless`;\n\
             # SIGUSR1 before the time limit makes kiln checkpoint and end the run as timed out.\n\
             set -eu\n\
             case \"$SLURM_ARRAY_TASK_ID\" in\n",
        );
        for (index, argv) in self.tasks.iter().enumerate() {
            let line: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
            text.push_str(&format!("  {index}) exec {} ;;\n", line.join(" ")));
        }
        text.push_str(
            "  *) echo \"kiln: no task $SLURM_ARRAY_TASK_ID in this job\" >&2; exit 2 ;;\nesac\n",
        );
        text
    }
}

/// `'…'` with embedded quotes closed and escaped: the word reaches the command unchanged.
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `sbatch --parsable SCRIPT`: the job's id.
pub fn submit(script: &Path) -> Result<String, SlurmError> {
    let output = run(
        "sbatch",
        Command::new("sbatch").arg("--parsable").arg(script),
    )?;
    // `--parsable` prints `id` or `id;cluster`.
    let id = output.split(';').next().unwrap_or("").trim().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SlurmError::Refused {
            tool: "sbatch",
            message: format!("unexpected reply {output:?}"),
        });
    }
    Ok(id)
}

/// `scancel JOB` or `scancel JOB_TASK`.
pub fn cancel(job: &str) -> Result<(), SlurmError> {
    run("scancel", Command::new("scancel").arg(job)).map(|_| ())
}

/// Runs a Slurm client, returning its standard output; its error output on failure.
fn run(tool: &'static str, command: &mut Command) -> Result<String, SlurmError> {
    let output = command.output().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SlurmError::Missing { tool },
        _ => SlurmError::Io { tool, source },
    })?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(SlurmError::Refused {
            tool,
            message: if message.is_empty() {
                format!("exit status {}", output.status)
            } else {
                message
            },
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The last `lines` lines of a task's output file (what it printed before failing).
pub fn output_tail(path: &Path, lines: usize) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let all: Vec<&str> = text.lines().collect();
    Some(all[all.len().saturating_sub(lines)..].join("\n"))
}

/// Where compute nodes cannot see the runs: a folder under the login node's own `/tmp`.
pub fn is_node_local(runs_dir: &Path) -> bool {
    let absolute = std::path::absolute(runs_dir).unwrap_or_else(|_| runs_dir.to_path_buf());
    let temporary = std::env::temp_dir();
    absolute.starts_with("/tmp")
        || absolute.starts_with(&temporary)
        || std::fs::canonicalize(runs_dir)
            .is_ok_and(|real| real.starts_with("/tmp") || real.starts_with(&temporary))
}
