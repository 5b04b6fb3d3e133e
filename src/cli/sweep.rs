//! `kiln sweep` and `kiln sweep status`: a grid of settings trained locally, and its table.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::BadInput;
use super::args::{SweepArgs, SweepCommand, SweepStatusArgs};
use crate::experiment::Experiment;
use crate::format::{aligned, or_dash, token};
use crate::sweep::{self, Grid, LocalSweep, SweepRecord};

pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    if let Some(SweepCommand::Status(status)) = args.command {
        return show_status(status);
    }
    let file = args
        .experiment
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_EXPERIMENT));
    let base = Experiment::load(&file, &args.overrides)?;
    let mut grid = Grid::from_table(&base.sweep);
    grid.extend(Grid::parse(&args.grid).map_err(|e| BadInput(e.to_string()))?);
    if grid.axes.is_empty() {
        return Err(BadInput(format!(
            "nothing to sweep: give --grid KEY=V1,V2,… or a [sweep] table in {}",
            file.display()
        ))
        .into());
    }
    // Every combination must make a valid experiment before any run starts.
    for combination in grid.combinations() {
        let mut overrides = args.overrides.clone();
        overrides.extend(combination.iter().map(|(k, v)| format!("{k}={v}")));
        Experiment::load(&file, &overrides)?;
    }
    let kiln = std::env::current_exe()?;
    let backend = args.backend.map(|b| b.name());
    let local = LocalSweep {
        kiln: &kiln,
        experiment: &file,
        name: &base.name,
        grid: &grid,
        runs_dir: &args.runs_dir,
        parallel: args.parallel,
        backend,
        overrides: &args.overrides,
    };
    let combinations = grid.combinations().len();
    eprintln!(
        "sweep of {combinations} runs over {}, {} at a time",
        grid.keys().join(", "),
        args.parallel.max(1)
    );
    let record = sweep::run_local(&local, |line| eprintln!("{line}"))?;
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        table(&record, &args.runs_dir)
    );
    let failed = record
        .runs
        .iter()
        .any(|r| !r.cancelled && r.exit_code != Some(0));
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn show_status(args: SweepStatusArgs) -> anyhow::Result<ExitCode> {
    let id = match args.sweep {
        Some(id) => id,
        None => sweep::list(&args.runs_dir).pop().ok_or_else(|| {
            BadInput(format!(
                "no sweeps in {} (kiln sweep starts one)",
                args.runs_dir.display()
            ))
        })?,
    };
    let record = SweepRecord::load(&args.runs_dir, &id).map_err(BadInput)?;
    let _ = write!(
        std::io::stdout().lock(),
        "{}",
        table(&record, &args.runs_dir)
    );
    Ok(ExitCode::SUCCESS)
}

/// `sweep ID` then one row per run, best validation accuracy first: the swept keys as columns.
fn table(record: &SweepRecord, runs_dir: &std::path::Path) -> String {
    let mut rows = vec![
        record
            .keys
            .iter()
            .cloned()
            .chain(["best_val", "final_gap", "state", "run"].map(String::from))
            .collect::<Vec<_>>(),
    ];
    for row in sweep::rows(record, runs_dir) {
        rows.push(
            row.settings
                .iter()
                .map(|(_, value)| token(value))
                .chain([
                    or_dash(row.best_validation_accuracy.map(|a| format!("{a:.4}"))),
                    or_dash(row.final_gap.map(|g| format!("{g:+.4}"))),
                    row.state,
                    or_dash(row.run_id),
                ])
                .collect(),
        );
    }
    format!("sweep {}\n{}", record.id, aligned(&rows))
}
