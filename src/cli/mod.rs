//! kiln's command line: the clap schema, dispatch to the module that does each command, and
//! the exit codes. Following a run (train, attach, resume, fork) is [`follow`], reviewing past
//! runs [`review`], starting a run in the background [`detach`].

mod detach;
mod follow;
mod review;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::bench::report::BenchError;
use crate::control::client::AttachError;
use crate::experiment::{BackendChoice, ConfigError};
use crate::monitor::RunEnd;
use crate::runs::StoreError;
use crate::train::{BackendError, RestartError};

/// Exit code for bad input: an invalid experiment, an unknown run, a request that cannot be met.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a run that started but failed, and for any other failure (a write, the
/// terminal).
pub const EXIT_FAILED: u8 = 1;

/// The experiment `kiln` and `kiln train` run when none is named.
pub const DEFAULT_EXPERIMENT: &str = "experiments/baseline.toml";
/// Where run directories go unless `--runs-dir` says otherwise.
pub const DEFAULT_RUNS_DIR: &str = "runs";

/// A request the user can fix by asking differently (exit 2), for errors with no type of
/// their own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The exit code for an error: 2 when anything in its chain is bad input, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let bad_input = err.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<ConfigError>()
            || cause.is::<BackendError>()
            || cause.is::<RestartError>()
            || cause.is::<AttachError>()
            || cause.is::<BenchError>()
            || cause
                .downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_bad_input)
    });
    if bad_input { EXIT_USAGE } else { EXIT_FAILED }
}

impl From<RunEnd> for ExitCode {
    fn from(end: RunEnd) -> ExitCode {
        match end {
            RunEnd::Finished => ExitCode::SUCCESS,
            RunEnd::Failed | RunEnd::Lost => ExitCode::from(EXIT_FAILED),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Train and watch image classifiers from the terminal"
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Action>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Action {
    /// Train an experiment (default: experiments/baseline.toml).
    Train(TrainArgs),
    /// Validate an experiment and print it fully resolved, without training.
    Check(CheckArgs),
    /// Open the live screen on a run another kiln process trains (default: the newest running).
    Attach(AttachArgs),
    /// Continue an interrupted or stopped run from its newest checkpoint, in the same run.
    Resume(ResumeArgs),
    /// Start a new run from a checkpoint of another, with changed settings.
    Fork(ForkArgs),
    /// Browse past runs (a table with --plain).
    Runs(RunsArgs),
    /// Review one past run with the live views (a text report with --plain).
    Show(ShowArgs),
    /// Compare runs side by side (a table with --plain).
    Compare(CompareArgs),
    /// Export a run's per-epoch metrics (CSV) or its curves (PNG).
    Export(ExportArgs),
    /// Run the article's tricks one after another on the same data and seed, then compare.
    Ladder(LadderArgs),
    /// Measure training speed: kiln's full loop against a bare burn loop, side by side.
    Bench(BenchArgs),
}

impl Action {
    /// The backend named on the command line, if any.
    fn backend(&self) -> Option<BackendChoice> {
        match self {
            Action::Train(args) => args.follow.backend,
            Action::Resume(args) => args.follow.backend,
            Action::Fork(args) => args.follow.backend,
            Action::Ladder(args) => args.backend,
            Action::Bench(args) => Some(args.backend),
            _ => None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) backend: BackendChoice,
    /// Only these workloads (repeatable): digits, mnist, small64, small64-bn, case-study.
    #[arg(long = "workload", value_name = "NAME")]
    pub(crate) workloads: Vec<String>,
    /// Also write the measurements as JSON here.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Untimed steps first (compilation, autotuning, caches).
    #[arg(long, default_value_t = 5)]
    pub(crate) warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 30)]
    pub(crate) steps: usize,
    /// Alternating repetitions of both loops; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) repeat: usize,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LadderArgs {
    /// Base experiment (default: experiments/baseline.toml).
    pub(crate) experiment: Option<PathBuf>,
    /// Override a setting in every rung (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendChoice>,
    /// Validation accuracy whose first epoch counts as convergence speed.
    #[arg(long, default_value_t = 0.9)]
    pub(crate) target: f64,
    /// Only the final table (no per-epoch progress).
    #[arg(long)]
    pub(crate) plain: bool,
}

/// Where past runs are and how to show them; shared by `runs`, `show` and `compare`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReviewOptions {
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Print plain text for scripts instead of opening the screen.
    #[arg(long)]
    pub(crate) plain: bool,
    /// Draw with plain ASCII.
    #[arg(long)]
    pub(crate) ascii: bool,
}

/// How a run started by `train`, `resume` or `fork` is shown, and where it trains.
#[derive(Debug, clap::Args)]
pub(crate) struct FollowOptions {
    /// Print plain progress lines instead of the live screen (automatic when stdout is not a
    /// terminal).
    #[arg(long)]
    pub(crate) headless: bool,
    /// Draw with plain ASCII instead of block and braille characters.
    #[arg(long)]
    pub(crate) ascii: bool,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Where to train; overrides train.backend.
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendChoice>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// Run id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    #[command(flatten)]
    pub(crate) follow: FollowOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ForkArgs {
    /// The parent run: id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    /// Start from the checkpoint taken at the end of this epoch (default: the newest).
    #[arg(long)]
    pub(crate) epoch: Option<usize>,
    /// Change a setting, e.g. --set model.dropout=0.5 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    /// Name of the new experiment (default: the parent's with "-fork").
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) follow: FollowOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AttachArgs {
    /// Run id, a unique prefix of it, or its directory (default: the newest running run).
    pub(crate) run: Option<String>,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Print plain progress lines instead of the live screen.
    #[arg(long)]
    pub(crate) headless: bool,
    /// Draw with plain ASCII.
    #[arg(long)]
    pub(crate) ascii: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunsArgs {
    #[command(flatten)]
    pub(crate) view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// Run id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    #[command(flatten)]
    pub(crate) view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// Two or more runs (ids, unique prefixes or directories).
    #[arg(required = true, num_args = 2..)]
    pub(crate) runs: Vec<String>,
    #[command(flatten)]
    pub(crate) view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("format").required(true).multiple(true).args(["csv", "png"])))]
pub(crate) struct ExportArgs {
    /// Run id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Write per-epoch metrics here (one row per epoch, with a header).
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Write loss and accuracy curves with change markers here.
    #[arg(long, value_name = "FILE")]
    pub(crate) png: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    /// Experiment file (TOML).
    pub(crate) experiment: Option<PathBuf>,
    /// Override a setting, e.g. --set model.dropout=0.3 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    #[command(flatten)]
    pub(crate) follow: FollowOptions,
    /// Start the run in the background and return at once, printing its id.
    #[arg(long)]
    pub(crate) detach: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Experiment file (TOML).
    pub(crate) experiment: PathBuf,
    /// Override a setting, e.g. --set model.dropout=0.3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
}

/// Parses the command line and runs the command; `main` prints an error and exits with
/// [`exit_code`].
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Past a file-size limit (ulimit -f, quotas) a write should fail and pause the run, not
    // kill the process with SIGXFSZ.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    // A backend this build lacks is bad input: say so before any run directory exists.
    if let Some(choice) = cli.command.as_ref().and_then(Action::backend)
        && !choice.is_built()
    {
        return Err(BackendError::TorchNotBuilt.into());
    }
    match cli.command {
        Some(Action::Check(args)) => review::check(args),
        Some(Action::Train(args)) => follow::train(args),
        Some(Action::Attach(args)) => follow::attach(args),
        Some(Action::Resume(args)) => follow::resume(args),
        Some(Action::Fork(args)) => follow::fork(args),
        Some(Action::Runs(args)) => review::runs(args),
        Some(Action::Show(args)) => review::show(args),
        Some(Action::Compare(args)) => review::compare(args),
        Some(Action::Export(args)) => review::export(args),
        Some(Action::Ladder(args)) => ladder(args),
        Some(Action::Bench(args)) => bench(args),
        None => follow::train(TrainArgs::default_run()),
    }
}

impl TrainArgs {
    /// `kiln` alone: the default experiment, shown live, in the default runs folder.
    fn default_run() -> Self {
        TrainArgs {
            experiment: None,
            overrides: Vec::new(),
            follow: FollowOptions {
                headless: false,
                ascii: false,
                runs_dir: PathBuf::from(DEFAULT_RUNS_DIR),
                backend: None,
            },
            detach: false,
        }
    }
}

fn ladder(args: LadderArgs) -> anyhow::Result<ExitCode> {
    let options = crate::ladder::LadderOptions {
        base: args
            .experiment
            .unwrap_or_else(|| PathBuf::from(DEFAULT_EXPERIMENT)),
        overrides: args.overrides,
        runs_dir: args.runs_dir,
        backend: args.backend,
        target: args.target,
        progress: !args.plain,
    };
    let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
    follow::stop_on_interrupt(stop_tx);
    let failed = crate::ladder::run(&options, &stop_rx, &mut std::io::stdout().lock())?;
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let options = crate::bench::report::BenchOptions {
        backend: args.backend,
        workloads: args.workloads,
        warmup: args.warmup,
        steps: args.steps,
        repeat: args.repeat,
    };
    let results = crate::bench::report::run(&options, &mut std::io::stdout().lock())?;
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
