//! kiln's command line: dispatch to the module that does each command, and the exit codes.
//! The clap schema is [`args`]. Following a run (train, attach, resume, fork) is [`follow`], reviewing past
//! runs [`review`], starting a run in the background [`detach`].

mod args;
mod cancel;
mod detach;
mod follow;
mod lr_find;
mod model;
mod prune;
mod review;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::bench::report::BenchError;
use crate::control::client::AttachError;
use crate::experiment::ConfigError;
use crate::monitor::RunEnd;
use crate::runs::StoreError;
use crate::train::{BackendError, RestartError};

use args::{Action, BenchArgs, LadderArgs, TrainArgs};
pub use args::{Cli, DEFAULT_EXPERIMENT, DEFAULT_RUNS_DIR};

/// Exit code for bad input: an invalid experiment, an unknown run, a request that cannot be met.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a run that started but failed, and for any other failure (a write, the
/// terminal).
pub const EXIT_FAILED: u8 = 1;

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
            || cause.is::<crate::train::prune::PruneError>()
            || cause
                .downcast_ref::<crate::infer::InferError>()
                .is_some_and(crate::infer::InferError::is_bad_input)
            || cause
                .downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_bad_input)
    });
    if bad_input { EXIT_USAGE } else { EXIT_FAILED }
}

/// The exit code for how a followed run ended.
pub fn run_exit_code(end: RunEnd) -> ExitCode {
    match end {
        RunEnd::Finished => ExitCode::SUCCESS,
        RunEnd::Failed | RunEnd::Lost => ExitCode::from(EXIT_FAILED),
    }
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
    // A backend this build lacks, or one that cannot run here, is bad input: say so before any
    // run directory exists. Runs handed to Slurm are checked on their node.
    if let Some(action) = &cli.command
        && let Some(choice) = action.backend()
    {
        if !choice.is_built() {
            return Err(BackendError::TorchNotBuilt.into());
        }
        if !action.on_slurm() {
            crate::train::choose_backend(choice, action.precision())?;
        }
    }
    match cli.command {
        Some(Action::Check(args)) => review::check(args),
        Some(Action::AugmentPreview(args)) => review::augment_preview(args),
        Some(Action::Train(args)) => follow::train(args),
        Some(Action::Attach(args)) => follow::attach(args),
        Some(Action::Resume(args)) => follow::resume(args),
        Some(Action::Fork(args)) => follow::fork(args),
        Some(Action::Runs(args)) => review::runs(args),
        Some(Action::Show(args)) => review::show(args),
        Some(Action::Compare(args)) => review::compare(args),
        Some(Action::Export(args)) => review::export(args),
        Some(Action::Evaluate(args)) => model::evaluate(args),
        Some(Action::Predict(args)) => model::predict(args),
        Some(Action::Prune(args)) => prune::prune(args),
        Some(Action::Completions(args)) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "kiln", &mut script);
            print_all(&script)
        }
        Some(Action::Man) => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            print_all(&page)
        }
        Some(Action::Ladder(args)) => ladder(args),
        Some(Action::Sweep(args)) => sweep::sweep(args),
        Some(Action::Cancel(args)) => cancel::cancel(args),
        Some(Action::Bench(args)) => bench(args),
        Some(Action::LrFind(args)) => lr_find::lr_find(args),
        None => follow::train(TrainArgs::default_run()),
    }
}

/// Writes generated text to stdout; a closed pipe (`kiln man | head`) is a normal end.
fn print_all(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(bytes);
    Ok(ExitCode::SUCCESS)
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
    if args.slurm.slurm {
        return sweep::ladder_on_slurm(&options, &args.slurm);
    }
    let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
    follow::stop_on_interrupt(stop_tx);
    let failed = crate::ladder::run(
        &options,
        &stop_rx,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let options = crate::bench::report::BenchOptions {
        backend: args.backend,
        precision: args.precision,
        workloads: args.workloads,
        warmup: args.warmup,
        steps: args.steps,
        repeat: args.repeat,
    };
    let mut out = std::io::stdout().lock();
    let json = if args.inference {
        serde_json::to_string_pretty(&crate::bench::inference::run(args.backend, &mut out)?)?
    } else if args.ops {
        serde_json::to_string_pretty(&crate::bench::report::run_ops(&options, &mut out)?)?
    } else {
        serde_json::to_string_pretty(&crate::bench::report::run(&options, &mut out)?)?
    };
    if let Some(path) = args.json {
        std::fs::write(&path, json).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
