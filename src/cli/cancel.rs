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
use crate::sweep::{self, SweepRecord};

/// How long a run may take to stop: the batch in progress, then its checkpoint.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let targets = match find_sweep(&args.runs_dir, &args.target)? {
        Some(record) => {
            std::fs::write(SweepRecord::cancel_marker(&args.runs_dir, &record.id), "")?;
            let _ = writeln!(out, "sweep {}: no further run starts", record.id);
            sweep::rows(&record, &args.runs_dir)
                .into_iter()
                .filter_map(|row| row.run_id)
                .map(|id| args.runs_dir.join(id))
                .collect()
        }
        None => vec![runs::resolve_run(&args.runs_dir, &args.target)?],
    };
    for run in targets {
        let id = run
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let line = match stop(&run) {
            Ok(true) => format!("{id}: stopped"),
            Ok(false) => format!("{id}: asked to stop; it had not ended after {STOP_TIMEOUT:?}"),
            Err(AttachError::NotRunning { .. } | AttachError::Stale { .. }) => {
                format!("{id}: not running")
            }
            Err(err) => format!("{id}: {err}"),
        };
        let _ = writeln!(out, "{line}");
    }
    Ok(ExitCode::SUCCESS)
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
