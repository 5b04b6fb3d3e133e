//! `kiln sweep` and `kiln sweep status`: a grid of settings trained locally or submitted to
//! Slurm (as are `train`, `ladder` and `resume` with `--slurm`), and the sweep's table.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::BadInput;
use super::args::{SlurmArgs, SweepArgs, SweepCommand, SweepStatusArgs};
use crate::experiment::{BackendChoice, Experiment};
use crate::format::{aligned, or_dash, token};
use crate::slurm;
use crate::sweep::{self, Grid, LocalSweep, RunCommand, SlurmSweep, SubmitError, SweepRecord};

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
    if args.slurm.slurm {
        let target = Target {
            file: &file,
            base: &base,
            overrides: &args.overrides,
            runs_dir: &args.runs_dir,
            backend: args.backend,
        };
        return submit_to_slurm(&target, &grid, &args.slurm);
    }
    let kiln = std::env::current_exe()?;
    let local = LocalSweep {
        command: RunCommand {
            kiln: &kiln,
            experiment: &file,
            runs_dir: &args.runs_dir,
            backend: args.backend.map(|b| b.name()),
            overrides: &args.overrides,
        },
        name: &base.name,
        grid: &grid,
        parallel: args.parallel,
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
        table(&record, sweep::rows(&record, &args.runs_dir))
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

/// What every run of a submission trains: the experiment file as loaded, with its overrides.
pub(super) struct Target<'a> {
    pub(super) file: &'a std::path::Path,
    pub(super) base: &'a Experiment,
    pub(super) overrides: &'a [String],
    pub(super) runs_dir: &'a std::path::Path,
    pub(super) backend: Option<BackendChoice>,
}

/// `--slurm`: the grid's runs as one array job (a grid with no axes is one run), recorded as a
/// sweep so `kiln sweep status` and `kiln cancel` follow it. Returns once sbatch has it.
pub(super) fn submit_to_slurm(
    target: &Target,
    grid: &Grid,
    options: &SlurmArgs,
) -> anyhow::Result<ExitCode> {
    let (kiln, runs_dir) = prepare(target.runs_dir, options)?;
    let experiment = std::path::absolute(target.file)?;
    let submission = SlurmSweep {
        command: RunCommand {
            kiln: &kiln,
            experiment: &experiment,
            runs_dir: &runs_dir,
            backend: target.backend.map(|b| b.name()),
            overrides: target.overrides,
        },
        name: &target.base.name,
        grid,
        options: slurm::options(&target.base.slurm, &options.sbatch),
    };
    let record = sweep::submit(&submission).map_err(submit_error)?;
    report_submission(&record, target.runs_dir);
    Ok(ExitCode::SUCCESS)
}

/// `kiln ladder --slurm`: the rungs as one array job (a task per rung, each `kiln train` of
/// the base experiment with the rung's settings), recorded as a sweep over `rung`; its status
/// prints the ladder's table.
pub(super) fn ladder_on_slurm(
    options: &crate::ladder::LadderOptions,
    slurm_args: &SlurmArgs,
) -> anyhow::Result<ExitCode> {
    // Every rung must make a valid experiment before anything is submitted.
    let planned = crate::ladder::experiments(options)?;
    let (kiln, runs_dir) = prepare(&options.runs_dir, slurm_args)?;
    let experiment = std::path::absolute(&options.base)?;
    let command = RunCommand {
        kiln: &kiln,
        experiment: &experiment,
        runs_dir: &runs_dir,
        backend: options.backend.map(|b| b.name()),
        overrides: &options.overrides,
    };
    let base_name = planned
        .first()
        .map_or_else(|| "ladder".to_string(), |(_, e)| e.name.clone());
    let grid = Grid {
        axes: vec![(
            "rung".into(),
            planned.iter().map(|(r, _)| r.name.to_string()).collect(),
        )],
    };
    let mut record = SweepRecord::new(&format!("{base_name}-ladder"), &experiment, &grid);
    record.ladder_target = Some(options.target);
    let mut tasks = Vec::new();
    for ((rung, rung_experiment), run) in planned.iter().zip(&mut record.runs) {
        run.name = rung_experiment.name.clone();
        let settings: Vec<(String, String)> = rung
            .overrides
            .iter()
            .filter_map(|o| o.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tasks.push(command.arguments(&run.name, &settings));
    }
    let first = planned.first().map(|(_, e)| e);
    let options_for_slurm = slurm::options(
        &first.map(|e| e.slurm.clone()).unwrap_or_default(),
        &slurm_args.sbatch,
    );
    let record =
        sweep::submit_tasks(record, tasks, &options_for_slurm, &runs_dir).map_err(submit_error)?;
    report_submission(&record, &options.runs_dir);
    Ok(ExitCode::SUCCESS)
}

/// The ladder's table of a ladder submitted to Slurm, from the rungs that have trained.
fn ladder_table(rows: &[sweep::SweepRow], target: f64, runs_dir: &std::path::Path) -> String {
    let mut table = crate::ladder::header(target);
    let mut rows: Vec<&sweep::SweepRow> = rows.iter().collect();
    // The article's order, as the local ladder prints it.
    rows.sort_by_key(|row| row.task);
    for row in rows {
        let Some(id) = &row.run_id else { continue };
        let rung = row.settings.first().map_or("", |(_, name)| name.as_str());
        let events = crate::runs::read_events(&runs_dir.join(id).join(crate::runs::EVENTS_FILE))
            .map(|contents| contents.events)
            .unwrap_or_default();
        if let Some(result) = crate::ladder::RungResult::from_events(rung, id, &events, target) {
            table.push_str(&result.row());
        }
    }
    table
}

/// A stopped, cancelled or timed-out run to carry on from its checkpoint on Slurm.
pub(super) struct Resubmit<'a> {
    pub(super) run: &'a std::path::Path,
    pub(super) id: &'a str,
    /// The run's own experiment: its `[slurm]` table is the job's.
    pub(super) experiment: &'a Experiment,
    pub(super) runs_dir: &'a std::path::Path,
    pub(super) backend: Option<BackendChoice>,
}

/// `kiln resume RUN --slurm`: one task running `kiln resume RUN --headless`, recorded as a
/// sweep of that one run (so status and cancel follow it as any other).
pub(super) fn resume_on_slurm(
    resubmit: &Resubmit,
    options: &SlurmArgs,
) -> anyhow::Result<ExitCode> {
    let (kiln, runs_dir) = prepare(resubmit.runs_dir, options)?;
    let run = std::path::absolute(resubmit.run)?;
    let mut argv: Vec<String> = [
        kiln.display().to_string(),
        "resume".into(),
        run.display().to_string(),
        "--headless".into(),
        "--runs-dir".into(),
        runs_dir.display().to_string(),
    ]
    .into();
    if let Some(backend) = resubmit.backend {
        argv.extend(["--backend".into(), backend.name().to_string()]);
    }
    let mut record = SweepRecord::new(
        &format!("resume-{}", resubmit.id),
        &run.join(crate::runs::EXPERIMENT_FILE),
        &Grid::default(),
    );
    record.runs[0].name = resubmit.experiment.name.clone();
    record.runs[0].run_id = Some(resubmit.id.to_string());
    let record = sweep::submit_tasks(
        record,
        vec![argv],
        &slurm::options(&resubmit.experiment.slurm, &options.sbatch),
        &runs_dir,
    )
    .map_err(submit_error)?;
    report_submission(&record, resubmit.runs_dir);
    Ok(ExitCode::SUCCESS)
}

/// What every submission needs first: a runs dir the compute nodes share (made if missing),
/// and the absolute paths of kiln and that dir (tasks start on other machines, in other
/// folders).
fn prepare(runs_dir: &std::path::Path, options: &SlurmArgs) -> anyhow::Result<(PathBuf, PathBuf)> {
    if slurm::is_node_local(runs_dir) && !options.force {
        return Err(BadInput(format!(
            "--slurm: the runs dir {} is under /tmp, which compute nodes do not share; give \
             --runs-dir on a shared filesystem (home, project or scratch space), or --force on a \
             one-node cluster",
            runs_dir.display()
        ))
        .into());
    }
    std::fs::create_dir_all(runs_dir)?;
    Ok((std::env::current_exe()?, std::path::absolute(runs_dir)?))
}

/// sbatch's refusal (or its absence) is the user's to fix; a failed write is not.
fn submit_error(err: SubmitError) -> anyhow::Error {
    match err {
        SubmitError::Slurm(err) => anyhow::Error::new(BadInput(err.to_string())),
        other => other.into(),
    }
}

fn report_submission(record: &SweepRecord, runs_dir: &std::path::Path) {
    let job = record
        .slurm
        .as_ref()
        .expect("a submitted sweep has its job");
    let _ = writeln!(
        std::io::stdout().lock(),
        "submitted {} run(s) as Slurm job {} (script {})\nsweep {}: kiln sweep status {} --runs-dir {}",
        record.runs.len(),
        job.job_id,
        job.script.display(),
        record.id,
        record.id,
        runs_dir.display()
    );
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
    if args.json {
        let rows = sweep::rows(&record, &args.runs_dir);
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&rows)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows = sweep::rows(&record, &args.runs_dir);
    let mut out = std::io::stdout().lock();
    if let Some(target) = record.ladder_target {
        let _ = writeln!(out, "{}", ladder_table(&rows, target, &args.runs_dir));
    }
    let _ = write!(out, "{}", table(&record, rows));
    Ok(ExitCode::SUCCESS)
}

/// `sweep ID` then one row per run, best validation accuracy first: the swept keys as columns
/// (and each run's Slurm task). A Slurm task that failed before its run could log anything
/// gets the end of its output file below the table.
fn table(record: &SweepRecord, sweep_rows: Vec<sweep::SweepRow>) -> String {
    let extra: &[&str] = match record.slurm {
        Some(_) => &["best_val", "final_gap", "state", "task", "run"],
        None => &["best_val", "final_gap", "state", "run"],
    };
    let mut rows = vec![
        record
            .keys
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect::<Vec<_>>(),
    ];
    let mut tails = String::new();
    for row in sweep_rows {
        let task = record.slurm.as_ref().zip(row.task);
        if let Some((job, index)) = task
            && row.state == "failed"
            && row.run_id.is_none()
        {
            let output = job.output_of(index);
            let tail = slurm::output_tail(&output, 10).unwrap_or_default();
            tails.push_str(&format!(
                "task {} failed before training; the end of {}:\n{tail}\n",
                job.task(index),
                output.display()
            ));
        }
        let mut cells: Vec<String> = row
            .settings
            .iter()
            .map(|(_, value)| token(value))
            .chain([
                or_dash(row.best_validation_accuracy.map(|a| format!("{a:.4}"))),
                or_dash(row.final_gap.map(|g| format!("{g:+.4}"))),
                row.state,
            ])
            .collect();
        if let Some((job, index)) = task {
            cells.push(job.task(index));
        }
        cells.push(or_dash(row.run_id));
        rows.push(cells);
    }
    format!("sweep {}\n{}{tails}", record.id, aligned(&rows))
}
