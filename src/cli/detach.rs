//! `kiln train --detach`: the same training command, headless, in a process of its own that
//! outlives the terminal; this process returns once the run directory exists.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use super::args::{DEFAULT_RUNS_DIR, TrainArgs};
use crate::runs;

/// How long the background process has to claim its run directory.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `kiln train EXPERIMENT --headless …` in its own process group (so a closing terminal
/// does not hang up on it), waits until it has claimed its run directory, and prints the id.
/// The experiment was validated already, so input errors were reported here, synchronously.
pub fn detach(experiment: &Path, args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let runs_dir = &args.follow.runs_dir;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("train")
        .arg(experiment)
        .arg("--headless")
        .arg("--runs-dir")
        .arg(runs_dir);
    for setting in &args.overrides {
        command.arg("--set").arg(setting);
    }
    if let Some(backend) = args.follow.backend {
        command.arg("--backend").arg(backend.name());
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|err| anyhow::anyhow!("cannot start the background run: {err}"))?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    let run = loop {
        if let Some(run) = runs::claimed_by(runs_dir, pid) {
            break run;
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the background run (pid {pid}) did not start within {} s",
                START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dir_option = if runs_dir == Path::new(DEFAULT_RUNS_DIR) {
        String::new()
    } else {
        format!(" --runs-dir {}", runs_dir.display())
    };
    let id = run.id;
    let _ = writeln!(
        std::io::stdout().lock(),
        "{id}\nstarted in the background (pid {pid}); watch it with: kiln attach {id}{dir_option} \
         (kiln show {id}{dir_option} once it has ended)"
    );
    Ok(ExitCode::SUCCESS)
}
