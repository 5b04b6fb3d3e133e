//! Looking at experiments and past runs without training: `check`, `runs`, `show`, `compare`
//! and `export`. On a terminal they open the browser; `--plain` (or a pipe) prints text.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::args::{
    AugmentPreviewArgs, CheckArgs, CompareArgs, ExportArgs, ReviewOptions, RunsArgs, ShowArgs,
};
use super::follow::interactive;
use crate::experiment::Experiment;
use crate::infer::{RunData, TrainedModel, mistakes};
use crate::monitor::RunView;
use crate::report;
use crate::runs;
use crate::tui::browser::{self, Browser};
use crate::tui::{self, Ui};

/// `kiln augment-preview`: the experiment's training images and augmented copies, as a PNG.
pub fn augment_preview(args: AugmentPreviewArgs) -> anyhow::Result<ExitCode> {
    use crate::augment_preview::{PreviewOptions, write_for};
    if args.n == 0 {
        return Err(super::BadInput("--n must be at least 1".into()).into());
    }
    let file = args
        .experiment
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_EXPERIMENT));
    let experiment = Experiment::load(&file, &args.overrides)?;
    let options = PreviewOptions {
        images: args.n,
        draws: args.draws,
        seed: args.seed,
    };
    let written = write_for(&experiment, options, &args.out)?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "wrote {} ({}×{}: {} images, each beside {} augmented cop{}{})",
        args.out.display(),
        written.layout.width,
        written.layout.height,
        written.images,
        args.draws,
        if args.draws == 1 { "y" } else { "ies" },
        if written.active {
            ""
        } else {
            "; augmentation is off in this experiment"
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let experiment = Experiment::load(&args.experiment, &args.overrides)?;
    let text = experiment.to_toml()?;
    // A closed pipe (`kiln check x | head`) is a normal end, not an error.
    let _ = write!(std::io::stdout().lock(), "{text}");
    Ok(ExitCode::SUCCESS)
}

/// Whether to print text rather than open the browser.
fn plain(view: &ReviewOptions) -> bool {
    view.plain || !interactive()
}

pub fn runs(args: RunsArgs) -> anyhow::Result<ExitCode> {
    if plain(&args.view) {
        let listing = runs::list_runs(&args.view.runs_dir)?;
        let _ = write!(std::io::stdout().lock(), "{}", report::runs_table(&listing));
        return Ok(ExitCode::SUCCESS);
    }
    browse(args.view, None)
}

pub fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let path = runs::resolve_run(&args.view.runs_dir, &args.run)?;
    if plain(&args.view) {
        let run = runs::open_run(&path)?;
        let view = RunView::replay(&run.events);
        let text = report::run_report(&run.summary, &view);
        let _ = write!(std::io::stdout().lock(), "{text}");
        return Ok(ExitCode::SUCCESS);
    }
    browse(args.view, Some(browser::Effect::Open(path)))
}

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let paths = args
        .runs
        .iter()
        .map(|run| runs::resolve_run(&args.view.runs_dir, run))
        .collect::<Result<Vec<PathBuf>, _>>()?;
    if plain(&args.view) {
        let opened = paths
            .iter()
            .map(|p| runs::open_run(p).map(|r| (r.summary, r.settings)))
            .collect::<Result<Vec<_>, _>>()?;
        let text = report::comparison_table(&opened);
        let _ = write!(std::io::stdout().lock(), "{text}");
        return Ok(ExitCode::SUCCESS);
    }
    browse(args.view, Some(browser::Effect::Compare(paths)))
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.all {
        let dir = args.tensorboard.as_ref().expect("clap requires a format");
        let listing = runs::list_runs(&args.runs_dir)?;
        let mut written = 0;
        for summary in &listing.runs {
            let run = runs::open_run(&summary.path)?;
            match tensorboard(&run, dir) {
                Ok(_) => written += 1,
                // A run with no finished epoch has nothing to show; the others go on.
                Err(runs::ExportError::NoEpochs) => {
                    let _ = writeln!(out, "skipped {}: no finished epoch", summary.id);
                }
                Err(err) => return Err(err.into()),
            }
        }
        let _ = writeln!(out, "wrote {written} run(s) under {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let query = args.run.as_deref().expect("clap requires a run or --all");
    let path = runs::resolve_run(&args.runs_dir, query)?;
    let run = runs::open_run(&path)?;
    if let Some(csv) = &args.csv {
        let rows = runs::export_csv(&run.events, csv)?;
        let _ = writeln!(out, "wrote {rows} epoch(s) to {}", csv.display());
    }
    if let Some(csv) = &args.classes_csv {
        let rows = runs::export_classes_csv(&run.events, csv)?;
        let _ = writeln!(out, "wrote {rows} epoch×class row(s) to {}", csv.display());
    }
    if let Some(png) = &args.png {
        let title = format!("{} · {}", run.summary.id, run.summary.dataset);
        runs::export_png(&run.events, &title, png)?;
        let _ = writeln!(out, "wrote {}", png.display());
    }
    if let Some(dir) = &args.tensorboard {
        let file = tensorboard(&run, dir)?;
        let _ = writeln!(out, "wrote {}", file.display());
    }
    if let Some(uri) = &args.mlflow {
        let toml = std::fs::read_to_string(path.join(runs::EXPERIMENT_FILE))
            .with_context(|| format!("{}: no experiment.toml", path.display()))?;
        let experiment = Experiment::from_toml(&toml)
            .with_context(|| format!("{}: unreadable experiment.toml", path.display()))?;
        let destination = crate::track::destination(&experiment, &run.summary.id, uri);
        let into = destination.experiment.clone();
        let sent = crate::track::mlflow::resend(
            destination,
            &path,
            crate::track::params_of(&toml),
            &run.events,
        )
        .with_context(|| format!("mlflow at {uri}"))?;
        let _ = writeln!(
            out,
            "sent {} to {uri} (experiment {into}): {sent} epoch(s) it lacked, its status and model",
            run.summary.id
        );
    }
    if let Some(dir) = &args.misclassified {
        let trained = TrainedModel::open(&path, args.checkpoint, None)?;
        let data = RunData::load(&trained.experiment)?;
        let wrong = mistakes::find(&trained, &data)?;
        mistakes::write(&wrong, &data.dataset, &trained.preprocessing.classes, dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let _ = writeln!(
            out,
            "wrote {} of {} validation images ({}) to {}",
            wrong.len(),
            data.split.validation.len(),
            trained.checkpoint,
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn tensorboard(run: &runs::OpenedRun, dir: &std::path::Path) -> Result<PathBuf, runs::ExportError> {
    let toml = std::fs::read_to_string(run.summary.path.join(runs::EXPERIMENT_FILE)).ok();
    runs::export_tensorboard(run, toml.as_deref(), dir)
}

/// The browser on its own, optionally with a run or comparison already open.
fn browse(view: ReviewOptions, open: Option<browser::Effect>) -> anyhow::Result<ExitCode> {
    let mut browser = Browser::new(view.runs_dir.clone());
    browser::execute(&mut browser, browser::Effect::Refresh);
    if let Some(effect) = open {
        browser::execute(&mut browser, effect);
        if let Some(message) = browser.message.take() {
            return Err(super::BadInput(message).into());
        }
    }
    let (no_commands, _) = crossbeam_channel::unbounded();
    tui::run(
        Ui::browsing(browser),
        crossbeam_channel::never(),
        no_commands,
        view.screen.theme(),
        view.runs_dir,
    )?;
    Ok(ExitCode::SUCCESS)
}
