//! Command-line parsing (clap) and dispatch to `train` and `check`, with kiln's exit codes.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::experiment::{BackendChoice, Experiment};
use crate::headless::{self, LineFormatter, RunEnd};
use crate::protocol::{Command, Event, EventKind};
use crate::train::{self, TrainOptions};
use crate::tui::{self, run_view::RunStatus, theme::Theme};

/// Exit code for bad input: an invalid experiment or a failed run set-up.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a run that started but failed.
pub const EXIT_RUN_FAILED: u8 = 1;

const DEFAULT_EXPERIMENT: &str = "experiments/baseline.toml";

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Train and watch image classifiers from the terminal"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Train an experiment (default: experiments/baseline.toml).
    Train(TrainArgs),
    /// Validate an experiment and print it fully resolved, without training.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// Experiment file (TOML).
    experiment: Option<PathBuf>,
    /// Override a setting, e.g. --set model.dropout=0.3 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print plain progress lines instead of the live screen (automatic when stdout is not a
    /// terminal).
    #[arg(long)]
    headless: bool,
    /// Draw with plain ASCII instead of block and braille characters.
    #[arg(long)]
    ascii: bool,
    /// Where run directories are created.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Where to train; overrides train.backend.
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Experiment file (TOML).
    experiment: PathBuf,
    /// Override a setting, e.g. --set model.dropout=0.3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Parses the command line and runs the command; errors are user errors, printed by `main`.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Some(Action::Check(args)) => check(args),
        Some(Action::Train(args)) => train(args),
        None => train(TrainArgs {
            experiment: None,
            overrides: Vec::new(),
            headless: false,
            ascii: false,
            runs_dir: PathBuf::from("runs"),
            backend: None,
        }),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let experiment = Experiment::load(&args.experiment, &args.overrides)?;
    let mut out = std::io::stdout().lock();
    // A closed pipe (`kiln check x | head`) is a normal end, not an error.
    let _ = write!(out, "{}", experiment.to_toml());
    Ok(ExitCode::SUCCESS)
}

fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let path = args
        .experiment
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXPERIMENT));
    let mut experiment = Experiment::load(&path, &args.overrides)?;
    if let Some(backend) = args.backend {
        experiment.train.backend = backend;
    }
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: args.runs_dir,
    })
    .map_err(|err| anyhow::anyhow!("cannot create the run directory: {err}"))?;
    let live = !args.headless && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let end = if live {
        follow_live(&handle, Theme::from_env(args.ascii))?
    } else {
        stop_on_interrupt(handle.commands.clone());
        let mut formatter = LineFormatter::new(handle.run.path.display().to_string());
        let end = headless::follow(
            &handle.events,
            &mut formatter,
            &mut std::io::stdout().lock(),
        );
        handle.join();
        end
    };
    Ok(match end {
        RunEnd::Finished => ExitCode::SUCCESS,
        RunEnd::Failed | RunEnd::Lost => ExitCode::from(EXIT_RUN_FAILED),
    })
}

/// The live screen; once it closes, a plain summary stays on the normal screen.
fn follow_live(handle: &train::TrainerHandle, theme: Theme) -> anyhow::Result<RunEnd> {
    let app = tui::run(handle.events.clone(), handle.commands.clone(), theme)?;
    let run_dir = handle.run.path.display().to_string();
    let end = match &app.run.status {
        RunStatus::Finished(_) => RunEnd::Finished,
        RunStatus::Failed(_) => RunEnd::Failed,
        _ => RunEnd::Lost,
    };
    let last = match (&app.run.finished, &app.run.status) {
        (Some(finished), _) => Some(EventKind::Finished(finished.clone())),
        (None, RunStatus::Failed(error)) => Some(EventKind::Failed {
            error: error.clone(),
        }),
        _ => None,
    };
    let summary = match last {
        Some(kind) => LineFormatter::new(run_dir)
            .line(&Event::now(None, None, kind))
            .unwrap_or_default(),
        None => format!("quit while the run was still training; its log so far is in {run_dir}"),
    };
    let _ = writeln!(std::io::stdout().lock(), "{summary}");
    Ok(end)
}

/// First Ctrl-C (or SIGTERM) stops the run gracefully: checkpoint, final event. A second one
/// exits at once.
fn stop_on_interrupt(commands: crossbeam_channel::Sender<Command>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("kiln-signals".into())
        .spawn(move || {
            let mut received = 0;
            for _ in signals.forever() {
                received += 1;
                if received == 1 {
                    eprintln!("stopping after this batch (press Ctrl-C again to quit at once)");
                    let _ = commands.send(Command::Stop);
                } else {
                    std::process::exit(130);
                }
            }
        });
}
