//! `kiln prune`: shows what each run's retention policy lets go, asks, then removes it.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use super::BadInput;
use super::args::PruneArgs;
use super::follow::interactive;
use crate::runs::{self, RunState};
use crate::train::prune::{self, PrunePlan};

pub fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.runs.is_empty() {
        runs::list_runs(&args.runs_dir)?
            .runs
            .into_iter()
            .filter(|run| run.state != RunState::Running)
            .map(|run| run.path)
            .collect()
    } else {
        args.runs
            .iter()
            .map(|run| runs::resolve_run(&args.runs_dir, run))
            .collect::<Result<Vec<_>, _>>()?
    };
    let plans = paths
        .iter()
        .map(|path| prune::plan(path, args.keep))
        .collect::<Result<Vec<PrunePlan>, _>>()?;
    let mut out = std::io::stdout().lock();
    let doomed: Vec<&PrunePlan> = plans.iter().filter(|p| !p.remove.is_empty()).collect();
    for plan in &plans {
        let _ = writeln!(
            out,
            "{}: remove {} checkpoint(s), {:.1} MB; keep {}",
            plan.run_id,
            plan.remove.len(),
            plan.bytes() as f64 / 1e6,
            plan.kept
        );
    }
    if doomed.is_empty() {
        let _ = writeln!(out, "nothing to remove");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        if !interactive() {
            return Err(BadInput("nothing removed: pass --yes to remove them".into()).into());
        }
        let _ = write!(out, "remove them? [y/N] ");
        let _ = out.flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            let _ = writeln!(out, "nothing removed");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut bytes = 0;
    for plan in doomed {
        prune::apply(plan)?;
        bytes += plan.bytes();
    }
    let _ = writeln!(out, "removed {:.1} MB", bytes as f64 / 1e6);
    Ok(ExitCode::SUCCESS)
}
