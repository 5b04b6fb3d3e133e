//! `kiln cancel RUN|SWEEP`: a graceful stop (checkpoint, final event) of a run, or of a sweep:
//! no further run of it starts, and those training stop.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::BadInput;
use super::args::CancelArgs;
use crate::control::client::{self, AttachError};
use crate::protocol::{Command, EventKind};
use crate::runs;
use crate::slurm;
use crate::sweep::{self, SweepRecord};

/// How long a run may take to stop: the batch in progress, then its checkpoint.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let Some(mut record) = find_sweep(&args.runs_dir, &args.target)? else {
        let run = runs::resolve_run(&args.runs_dir, &args.target)?;
        let _ = writeln!(out, "{}", stop_or_scancel(&run, None));
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::write(SweepRecord::cancel_marker(&args.runs_dir, &record.id), "")?;
    let _ = writeln!(out, "sweep {}: no further run starts", record.id);
    let rows = sweep::rows(&record, &args.runs_dir);
    for row in &rows {
        let task = record.slurm.as_ref().zip(row.task).map(|(j, i)| j.task(i));
        if let Some(id) = &row.run_id {
            let _ = writeln!(
                out,
                "{}",
                stop_or_scancel(&args.runs_dir.join(id), task.as_deref())
            );
        } else if let Some(task) = &task
            && is_waiting(&row.state)
        {
            let _ = writeln!(out, "{}", scancel(task));
        }
    }
    // Runs that had not ended show as cancelled from now on, whatever Slurm keeps of them.
    for row in rows
        .iter()
        .filter(|row| is_waiting(&row.state) || row.state.starts_with("running"))
    {
        if let Some(run) = row.task.and_then(|i| record.runs.get_mut(i)) {
            run.cancelled = true;
        }
    }
    if record.slurm.is_some() {
        record.save(&args.runs_dir)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A Slurm task that has not started training.
fn is_waiting(state: &str) -> bool {
    state.starts_with("pending") || state.starts_with("starting")
}

/// A graceful stop through the run's control socket (through the srun bridge for a run on
/// another node); where neither reaches it, `scancel`, whose SIGTERM kiln takes as the same
/// graceful stop.
fn stop_or_scancel(run: &Path, task: Option<&str>) -> String {
    let id = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stop(run) {
        Ok(true) => format!("{id}: stopped"),
        Ok(false) => format!("{id}: asked to stop; it had not ended after {STOP_TIMEOUT:?}"),
        Err(AttachError::NotRunning { .. } | AttachError::Stale { .. }) => {
            format!("{id}: not running")
        }
        // Another node's run, and no bridge to it (no srun here, or it failed).
        Err(AttachError::Elsewhere { slurm_job, .. } | AttachError::Bridge { slurm_job, .. })
            if slurm_job.is_some() || task.is_some() =>
        {
            let job = task.map(str::to_string).or(slurm_job).unwrap_or_default();
            format!("{id}: {}", scancel(&job))
        }
        Err(err) => format!("{id}: {err}"),
    }
}

fn scancel(task: &str) -> String {
    match slurm::cancel(task) {
        Ok(()) => format!("Slurm task {task}: cancelled (scancel)"),
        Err(err) => format!("Slurm task {task}: {err}"),
    }
}

/// The sweep `target` names (its id or a unique prefix), if it names one.
fn find_sweep(runs_dir: &Path, target: &str) -> Result<Option<SweepRecord>, BadInput> {
    let matching: Vec<String> = sweep::list(runs_dir)
        .into_iter()
        .filter(|id| id.starts_with(target))
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [id] => SweepRecord::load(runs_dir, id).map(Some).map_err(BadInput),
        _ => Err(BadInput(format!(
            "\"{target}\" matches {} sweeps: {}; give more of the id",
            matching.len(),
            matching.join(", ")
        ))),
    }
}

/// Sends the run a stop through its control socket and waits for it to end; `false` when it
/// had not ended in time.
fn stop(run: &Path) -> Result<bool, AttachError> {
    let attached = client::attach(run)?;
    let _ = attached.commands.send(Command::Stop);
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match attached.events.recv_timeout(left) {
            Ok(event) if matches!(event.kind, EventKind::Finished(_)) => return Ok(true),
            Ok(_) => {}
            // The socket closed: the run ended.
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(true),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Ok(false),
        }
    }
}
