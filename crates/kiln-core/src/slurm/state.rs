//! What Slurm says of an array job's tasks: pending (and why), running (where), or how they
//! ended, from one `squeue` call.

use std::collections::BTreeMap;
use std::process::Command;

use super::{SlurmError, run};

/// One array task as Slurm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Slurm's state name: `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, …
    pub state: String,
    /// The reason a task waits (`Resources`, `Priority`), or the node it runs on.
    pub detail: String,
}

impl TaskState {
    pub fn is_pending(&self) -> bool {
        self.state == "PENDING"
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "COMPLETING" | "CONFIGURING"
        )
    }

    /// The state in the words of kiln's tables, with the reason or node.
    pub fn label(&self) -> String {
        let detail = self.detail.trim_matches(|c| c == '(' || c == ')');
        match self.state.as_str() {
            "PENDING" if !detail.is_empty() && detail != "None" => format!("pending ({detail})"),
            "PENDING" => "pending".into(),
            s if self.is_running() && !detail.is_empty() => {
                format!("{} ({detail})", s.to_lowercase())
            }
            "TIMEOUT" => "timed out".into(),
            "OUT_OF_MEMORY" => "out of memory".into(),
            "NODE_FAIL" => "node failed".into(),
            other => other.to_lowercase(),
        }
    }
}

/// Every task of array job `job` that Slurm still knows, by task index. Ended tasks are kept
/// for `MinJobAge` (5 minutes by default); a task cancelled before it started is dropped from
/// the job at once, so a known job missing one of its tasks had it cancelled while pending.
pub fn task_states(job: &str) -> Result<BTreeMap<usize, TaskState>, SlurmError> {
    let text = run(
        "squeue",
        Command::new("squeue").args(["-h", "-r", "-t", "all", "-j", job, "-o", "%K|%T|%R"]),
    )?;
    Ok(parse_squeue(&text))
}

/// `squeue -o '%K|%T|%R'` lines (task index, state, reason or node); other lines are skipped.
pub fn parse_squeue(text: &str) -> BTreeMap<usize, TaskState> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '|');
            let index = fields.next()?.trim().parse().ok()?;
            let state = fields.next()?.trim().to_string();
            let detail = fields.next().unwrap_or("").trim().to_string();
            Some((index, TaskState { state, detail }))
        })
        .collect()
}

/// What Slurm says of one job (or array task) `job`, ended ones included; `None` when it cannot
/// be asked (its tools are not here) or no longer knows the job.
fn state_of(job: &str) -> Option<TaskState> {
    let text = run(
        "squeue",
        Command::new("squeue").args(["-h", "-t", "all", "-j", job, "-o", "%T"]),
    )
    .ok()?;
    let state = text.lines().next()?.trim().to_string();
    (!state.is_empty()).then(|| TaskState {
        state,
        detail: String::new(),
    })
}

/// Whether Slurm says job (or array task) `job` is running; `false` when it cannot be asked.
pub fn is_running(job: &str) -> bool {
    state_of(job).is_some_and(|task| task.is_running())
}

/// Whether Slurm says job (or array task) `job` has ended (completed, failed, cancelled, timed
/// out, its node failed). `false` when Slurm cannot be asked (its tools are not here), no longer
/// knows the job, or it still waits or runs: then nobody can say it is safe to train it here.
pub fn has_ended(job: &str) -> bool {
    state_of(job)
        .is_some_and(|task| !task.is_pending() && !task.is_running() && task.state != "SUSPENDED")
}
