//! Command-line parsing (clap) and dispatch to `train` and `check`, with kiln's exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::control;
use crate::experiment::{BackendChoice, Experiment};
use crate::headless::{self, LineFormatter, RunEnd};
use crate::protocol::{Command, Event, EventKind};
use crate::report;
use crate::runs;
use crate::train::checkpoint;
use crate::train::{self, TrainOptions};
use crate::tui::app::App;
use crate::tui::browser::{self, Browser};
use crate::tui::run_view::{RunStatus, RunView};
use crate::tui::{self, theme::Theme};

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
struct BenchArgs {
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendChoice,
    /// Only these workloads (repeatable): digits, mnist, small64, small64-bn, case-study.
    #[arg(long = "workload", value_name = "NAME")]
    workloads: Vec<String>,
    /// Also write the measurements as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Untimed steps first (compilation, autotuning, caches).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Alternating repetitions of both loops; medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

#[derive(Debug, clap::Args)]
struct LadderArgs {
    /// Base experiment (default: experiments/baseline.toml).
    experiment: Option<PathBuf>,
    /// Override a setting in every rung (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
    /// Validation accuracy whose first epoch counts as convergence speed.
    #[arg(long, default_value_t = 0.9)]
    target: f64,
    /// Only the final table (no per-epoch progress).
    #[arg(long)]
    plain: bool,
}

/// Where past runs are and how to show them; shared by `runs`, `show` and `compare`.
#[derive(Debug, clap::Args)]
struct ReviewOptions {
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Print plain text for scripts instead of opening the screen.
    #[arg(long)]
    plain: bool,
    /// Draw with plain ASCII.
    #[arg(long)]
    ascii: bool,
}

/// How a run started by `train`, `resume` or `fork` is shown, and where it trains.
#[derive(Debug, clap::Args)]
struct FollowOptions {
    /// Print plain progress lines instead of the live screen (automatic when stdout is not a
    /// terminal).
    #[arg(long)]
    headless: bool,
    /// Draw with plain ASCII instead of block and braille characters.
    #[arg(long)]
    ascii: bool,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Where to train; overrides train.backend.
    #[arg(long, value_enum)]
    backend: Option<BackendChoice>,
}

#[derive(Debug, clap::Args)]
struct ResumeArgs {
    /// Run id, a unique prefix of it, or its directory.
    run: String,
    #[command(flatten)]
    follow: FollowOptions,
}

#[derive(Debug, clap::Args)]
struct ForkArgs {
    /// The parent run: id, a unique prefix of it, or its directory.
    run: String,
    /// Start from the checkpoint taken at the end of this epoch (default: the newest).
    #[arg(long)]
    epoch: Option<usize>,
    /// Change a setting, e.g. --set model.dropout=0.5 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Name of the new experiment (default: the parent's with "-fork").
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    follow: FollowOptions,
}

#[derive(Debug, clap::Args)]
struct AttachArgs {
    /// Run id, a unique prefix of it, or its directory (default: the newest running run).
    run: Option<String>,
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Print plain progress lines instead of the live screen.
    #[arg(long)]
    headless: bool,
    /// Draw with plain ASCII.
    #[arg(long)]
    ascii: bool,
}

#[derive(Debug, clap::Args)]
struct RunsArgs {
    #[command(flatten)]
    view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// Run id, a unique prefix of it, or its directory.
    run: String,
    #[command(flatten)]
    view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Two or more runs (ids, unique prefixes or directories).
    #[arg(required = true, num_args = 2..)]
    runs: Vec<String>,
    #[command(flatten)]
    view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("format").required(true).multiple(true).args(["csv", "png"])))]
struct ExportArgs {
    /// Run id, a unique prefix of it, or its directory.
    run: String,
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_dir: PathBuf,
    /// Write per-epoch metrics here (one row per epoch, with a header).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write loss and accuracy curves with change markers here.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// Experiment file (TOML).
    experiment: Option<PathBuf>,
    /// Override a setting, e.g. --set model.dropout=0.3 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    #[command(flatten)]
    follow: FollowOptions,
    /// Start the run in the background and return at once, printing its id.
    #[arg(long)]
    detach: bool,
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
    // Past a file-size limit (ulimit -f, quotas) a write should fail and pause the run, not
    // kill the process with SIGXFSZ.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    // A backend this build lacks is bad input: say so before any run directory exists.
    if let Some(choice) = cli.command.as_ref().and_then(Action::backend) {
        train::backend_built(choice)?;
    }
    match cli.command {
        Some(Action::Check(args)) => check(args),
        Some(Action::Train(args)) => train(args),
        Some(Action::Attach(args)) => attach(args),
        Some(Action::Resume(args)) => resume(args),
        Some(Action::Fork(args)) => fork(args),
        Some(Action::Runs(args)) => runs_command(args),
        Some(Action::Show(args)) => show(args),
        Some(Action::Compare(args)) => compare(args),
        Some(Action::Export(args)) => export(args),
        Some(Action::Ladder(args)) => ladder(args),
        Some(Action::Bench(args)) => bench(args),
        None => train(TrainArgs {
            experiment: None,
            overrides: Vec::new(),
            follow: FollowOptions {
                headless: false,
                ascii: false,
                runs_dir: PathBuf::from("runs"),
                backend: None,
            },
            detach: false,
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
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXPERIMENT));
    let mut experiment = Experiment::load(&path, &args.overrides)?;
    if let Some(backend) = args.follow.backend {
        experiment.train.backend = backend;
    }
    if args.detach {
        return detach(&path, &args);
    }
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: args.follow.runs_dir.clone(),
    })
    .map_err(|err| anyhow::anyhow!("cannot create the run directory: {err}"))?;
    follow_run(handle, Vec::new(), args.follow, path)
}

/// Shows a started run to its end: the live screen on a terminal, progress lines otherwise.
/// `history` is what the run's log held before (a resumed run): shown, not printed again.
fn follow_run(
    handle: train::TrainerHandle,
    history: Vec<Event>,
    options: FollowOptions,
    experiment_file: PathBuf,
) -> anyhow::Result<ExitCode> {
    let FollowOptions {
        headless,
        ascii,
        runs_dir,
        ..
    } = options;
    let live = !headless && interactive();
    let end = if live {
        let mut app = App::live();
        app.experiment_file = Some(experiment_file);
        for event in history {
            tui::app::update(&mut app, tui::app::Message::Trainer(event));
        }
        follow_live(&handle, app, Theme::from_env(ascii), runs_dir)?
    } else {
        stop_on_interrupt(handle.commands.clone());
        let mut formatter = LineFormatter::new(handle.run.path.display().to_string());
        for event in &history {
            formatter.line(event);
        }
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

fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let path = runs::resolve_run(&args.follow.runs_dir, &args.run)?;
    let opened = runs::open_run(&path)?;
    let id = opened.summary.id.clone();
    match opened.summary.state {
        runs::RunState::Running => {
            anyhow::bail!("{id} is still training; watch it with `kiln attach {id}`")
        }
        runs::RunState::Finished => anyhow::bail!(
            "{id} finished all {} epochs; to train it further, fork it: \
             kiln fork {id} --set train.epochs=N",
            opened.summary.epochs_planned
        ),
        _ => {}
    }
    let experiment_file = path.join(runs::EXPERIMENT_FILE);
    let mut experiment = Experiment::load(&experiment_file, &[])?;
    if let Some(backend) = args.follow.backend {
        experiment.train.backend = backend;
    }
    let (checkpoint, _) = checkpoint::list(&path.join(runs::CHECKPOINTS_DIR))
        .pop()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{id} has no complete checkpoint to resume from (they are written every \
                 train.checkpoint_every epochs); start it again with kiln train"
            )
        })?;
    let history = crate::protocol::epoch_history(&opened.events);
    let run = runs::RunDir {
        id: id.clone(),
        path,
    };
    let handle = train::resume(experiment, run, checkpoint, history)
        .map_err(|err| anyhow::anyhow!("cannot resume {id}: {err}"))?;
    follow_run(handle, opened.events, args.follow, experiment_file)
}

fn fork(args: ForkArgs) -> anyhow::Result<ExitCode> {
    let path = runs::resolve_run(&args.follow.runs_dir, &args.run)?;
    let opened = runs::open_run(&path)?;
    let parent = opened.summary.id.clone();
    let checkpoints = checkpoint::list(&path.join(runs::CHECKPOINTS_DIR));
    let chosen = match args.epoch {
        Some(epoch) => checkpoints
            .iter()
            .rev()
            .find(|(_, s)| s.epochs_completed == epoch && s.batches_done == 0)
            .cloned(),
        None => checkpoints.last().cloned(),
    };
    let Some((checkpoint, state)) = chosen else {
        let mut epochs: Vec<String> = checkpoints
            .iter()
            .filter(|(_, s)| s.batches_done == 0)
            .map(|(_, s)| s.epochs_completed.to_string())
            .collect();
        epochs.dedup();
        anyhow::bail!(
            "{parent} has no checkpoint {}; it has checkpoints after epoch(s): {}",
            args.epoch
                .map_or("at all".to_string(), |e| format!("at the end of epoch {e}")),
            if epochs.is_empty() {
                "none".to_string()
            } else {
                epochs.join(", ")
            }
        );
    };
    let experiment_file = path.join(runs::EXPERIMENT_FILE);
    let mut experiment = Experiment::load(&experiment_file, &args.overrides)?;
    // The fork goes on with the values in force at the checkpoint unless told otherwise.
    let overridden = |key: &str| {
        args.overrides
            .iter()
            .any(|o| o.split('=').next().is_some_and(|k| k.trim() == key))
    };
    if !overridden("model.dropout") {
        experiment.model.dropout = state.dropout;
    }
    if !overridden("train.learning_rate") {
        experiment.train.learning_rate = state.learning_rate;
    }
    if let Some(backend) = args.follow.backend {
        experiment.train.backend = backend;
    }
    experiment.name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-fork", experiment.name));
    if experiment.train.epochs <= state.epochs_completed {
        anyhow::bail!(
            "the fork would have nothing to train: train.epochs is {} and it starts after epoch \
             {}; raise it, e.g. --set train.epochs={}",
            experiment.train.epochs,
            state.epochs_completed,
            state.epochs_completed * 2
        );
    }
    let restart = train::Restart {
        checkpoint,
        source: runs::RunDir {
            id: parent.clone(),
            path,
        },
        history: crate::protocol::epoch_history(&opened.events),
        parent: Some(crate::protocol::ParentRun {
            run_id: parent,
            epoch: state.epochs_completed,
        }),
    };
    let handle = train::fork(
        TrainOptions {
            experiment,
            runs_dir: args.follow.runs_dir.clone(),
        },
        restart,
    )
    .map_err(|err| anyhow::anyhow!("cannot create the run directory: {err}"))?;
    follow_run(handle, Vec::new(), args.follow, experiment_file)
}

/// Starts this same command headless in a process of its own (its own process group, so a
/// closing terminal does not hang up on it), waits for its run directory, and prints the id.
/// The experiment was validated already, so input errors were reported here, synchronously.
fn detach(experiment: &std::path::Path, args: &TrainArgs) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("train")
        .arg(experiment)
        .arg("--headless")
        .arg("--runs-dir")
        .arg(&args.follow.runs_dir);
    for setting in &args.overrides {
        command.arg("--set").arg(setting);
    }
    if let Some(backend) = args.follow.backend {
        command
            .arg("--backend")
            .arg(format!("{backend:?}").to_lowercase());
    }
    let child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|err| anyhow::anyhow!("cannot start the background run: {err}"))?;
    let pid = child.id().to_string();
    // The run directory is the one whose pid file names the child.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let claimed = std::fs::read_dir(&args.follow.runs_dir)
            .ok()
            .and_then(|entries| {
                entries.flatten().map(|e| e.path()).find(|dir| {
                    std::fs::read_to_string(dir.join(runs::PID_FILE))
                        .is_ok_and(|text| text.trim() == pid)
                })
            });
        if let Some(dir) = claimed {
            let id = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dir_option = if args.follow.runs_dir == Path::new("runs") {
                String::new()
            } else {
                format!(" --runs-dir {}", args.follow.runs_dir.display())
            };
            let _ = writeln!(
                std::io::stdout().lock(),
                "{id}\nstarted in the background (pid {pid}); see it with: kiln show {id}{dir_option}"
            );
            return Ok(ExitCode::SUCCESS);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the background run (pid {pid}) did not start within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The live screen; once it closes, a plain summary stays on the normal screen.
fn follow_live(
    handle: &train::TrainerHandle,
    app: App,
    theme: Theme,
    runs_dir: PathBuf,
) -> anyhow::Result<RunEnd> {
    let app = tui::run(
        app,
        handle.events.clone(),
        handle.commands.clone(),
        theme,
        runs_dir,
    )?;
    if app.detached {
        return Ok(train_on_without_terminal(handle));
    }
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

/// After the terminal went away: keep training to the end (the trainer writes the log and
/// checkpoints as always), ignoring further hang-ups; SIGTERM or SIGINT still stop it cleanly.
fn train_on_without_terminal(handle: &train::TrainerHandle) -> RunEnd {
    let hung_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, hung_up);
    stop_on_interrupt(handle.commands.clone());
    let mut end = RunEnd::Lost;
    for event in handle.events.iter() {
        match event.kind {
            EventKind::Finished(_) => end = RunEnd::Finished,
            EventKind::Failed { .. } => end = RunEnd::Failed,
            _ => {}
        }
    }
    end
}

fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// The browser on its own, optionally with a run or comparison already open.
fn browse(
    runs_dir: PathBuf,
    ascii: bool,
    open: Option<browser::Effect>,
) -> anyhow::Result<ExitCode> {
    let mut browser = Browser::new(runs_dir.clone());
    browser::execute(&mut browser, browser::Effect::Refresh);
    if let Some(effect) = open {
        browser::execute(&mut browser, effect);
        if let Some(message) = browser.message.take() {
            anyhow::bail!(message);
        }
    }
    let mut app = App::new();
    app.browser = Some(Box::new(browser));
    let (no_commands, _) = crossbeam_channel::unbounded();
    tui::run(
        app,
        crossbeam_channel::never(),
        no_commands,
        Theme::from_env(ascii),
        runs_dir,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn attach(args: AttachArgs) -> anyhow::Result<ExitCode> {
    let path = match &args.run {
        Some(query) => runs::resolve_run(&args.runs_dir, query)?,
        None => newest_running(&args.runs_dir)?,
    };
    if let Ok(run) = runs::open_run(&path)
        && matches!(
            run.summary.state,
            runs::RunState::Finished | runs::RunState::Failed
        )
    {
        let id = run.summary.id;
        anyhow::bail!(
            "{id} has ended ({}); review it with `kiln show {id}`",
            run.summary.state.label()
        );
    }
    let attached = control::client::attach(&path)?;
    let (run_id, pid) = (attached.run_id.clone(), attached.pid);
    let end = if args.headless || !interactive() {
        let mut formatter = LineFormatter::new(path.display().to_string());
        let mut out = std::io::stdout().lock();
        for event in &attached.history {
            if let Some(line) = formatter.line(event) {
                let _ = writeln!(out, "{line}");
            }
        }
        headless::follow(&attached.events, &mut formatter, &mut out)
    } else {
        let mut app = App::attached();
        for event in attached.history {
            tui::app::update(&mut app, tui::app::Message::Trainer(event));
        }
        let app = tui::run(
            app,
            attached.events,
            attached.commands,
            Theme::from_env(args.ascii),
            args.runs_dir.clone(),
        )?;
        if app.run.is_active() {
            if !app.detached {
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "detached from {run_id}; it trains on (pid {pid}). Come back with: kiln attach {run_id}"
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        match app.run.status {
            RunStatus::Finished(_) => RunEnd::Finished,
            RunStatus::Failed(_) => RunEnd::Failed,
            _ => RunEnd::Lost,
        }
    };
    Ok(match end {
        RunEnd::Finished => ExitCode::SUCCESS,
        RunEnd::Failed | RunEnd::Lost => ExitCode::from(EXIT_RUN_FAILED),
    })
}

/// The running run started last (run ids begin with their start time).
fn newest_running(runs_dir: &Path) -> anyhow::Result<PathBuf> {
    let listing = runs::list_runs(runs_dir)?;
    listing
        .runs
        .iter()
        .filter(|run| run.state == runs::RunState::Running)
        .max_by(|a, b| a.id.cmp(&b.id))
        .map(|run| run.path.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no run is training in {}; `kiln runs --runs-dir {}` lists them all",
                runs_dir.display(),
                runs_dir.display()
            )
        })
}

fn runs_command(args: RunsArgs) -> anyhow::Result<ExitCode> {
    if args.view.plain || !interactive() {
        let listing = runs::list_runs(&args.view.runs_dir)?;
        let _ = write!(std::io::stdout().lock(), "{}", report::runs_table(&listing));
        return Ok(ExitCode::SUCCESS);
    }
    browse(args.view.runs_dir, args.view.ascii, None)
}

fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let path = runs::resolve_run(&args.view.runs_dir, &args.run)?;
    if args.view.plain || !interactive() {
        let run = runs::open_run(&path)?;
        let view = RunView::replay(&run.events);
        let _ = write!(
            std::io::stdout().lock(),
            "{}",
            report::run_report(&run.summary, &view)
        );
        return Ok(ExitCode::SUCCESS);
    }
    browse(
        args.view.runs_dir,
        args.view.ascii,
        Some(browser::Effect::Open(path)),
    )
}

fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let paths = args
        .runs
        .iter()
        .map(|run| runs::resolve_run(&args.view.runs_dir, run))
        .collect::<Result<Vec<_>, _>>()?;
    if args.view.plain || !interactive() {
        let opened = paths
            .iter()
            .map(|p| runs::open_run(p).map(|r| (r.summary, r.settings)))
            .collect::<Result<Vec<_>, _>>()?;
        let _ = write!(
            std::io::stdout().lock(),
            "{}",
            report::comparison_table(&opened)
        );
        return Ok(ExitCode::SUCCESS);
    }
    browse(
        args.view.runs_dir,
        args.view.ascii,
        Some(browser::Effect::Compare(paths)),
    )
}

fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let path = runs::resolve_run(&args.runs_dir, &args.run)?;
    let run = runs::open_run(&path)?;
    let mut out = std::io::stdout().lock();
    if let Some(csv) = &args.csv {
        let rows = runs::export_csv(&run.events, csv)?;
        let _ = writeln!(out, "wrote {rows} epoch(s) to {}", csv.display());
    }
    if let Some(png) = &args.png {
        let title = format!("{} · {}", run.summary.id, run.summary.dataset);
        runs::export_png(&run.events, &title, png)?;
        let _ = writeln!(out, "wrote {}", png.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let all = crate::bench::workloads();
    let chosen: Vec<_> = if args.workloads.is_empty() {
        all
    } else {
        let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
        if let Some(unknown) = args.workloads.iter().find(|w| !names.contains(&w.as_str())) {
            anyhow::bail!(
                "unknown workload \"{unknown}\"; expected one of {}",
                names.join(", ")
            );
        }
        all.into_iter()
            .filter(|w| args.workloads.contains(&w.name))
            .collect()
    };
    if args.steps == 0 {
        anyhow::bail!("--steps must be at least 1");
    }
    // Benchmark runs are real runs, but not ones to keep.
    let runs_dir = std::env::temp_dir().join(format!("kiln-bench-{}", std::process::id()));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<11} {:<6} {:>12} {:>12} {:>9} {:>11} {:>8} {:>8}",
        "workload",
        "where",
        "kiln img/s",
        "bare img/s",
        "kiln/bare",
        "eval img/s",
        "s/epoch",
        "peak MB"
    );
    let mut results = Vec::new();
    for workload in &chosen {
        let m = crate::bench::measure(
            workload,
            args.backend,
            args.warmup,
            args.steps,
            args.repeat,
            &runs_dir,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", workload.name))?;
        let _ = writeln!(
            out,
            "{:<11} {:<6} {:>12.0} {:>12.0} {:>9.3} {:>11.0} {:>8.2} {:>8.0}",
            m.workload,
            m.backend,
            m.train_images_per_second,
            m.bare_train_images_per_second,
            m.ratio_vs_bare,
            m.eval_images_per_second,
            m.seconds_per_epoch,
            m.peak_memory_mb
        );
        results.push(m);
    }
    let monitoring = crate::bench::monitoring_seconds_per_batch(&runs_dir, 2000)
        .map_err(|e| anyhow::anyhow!("monitoring: {e}"))?;
    let shares: Vec<String> = results
        .iter()
        .map(|m| {
            let step = m.batch_size as f64 / m.bare_train_images_per_second;
            format!("{} {:.2}%", m.workload, 100.0 * monitoring / step)
        })
        .collect();
    let _ = writeln!(
        out,
        "monitoring: {:.1} µs per batch (log, viewers, screen state): {} of a bare step",
        monitoring * 1e6,
        shares.join(", ")
    );
    let frame = crate::bench::frame_milliseconds(1000, 120, 40, 20);
    let _ = writeln!(
        out,
        "screen: one 120x40 frame with 1,000 epochs of history: {frame:.2} ms"
    );
    if args.workloads.is_empty() || args.workloads.iter().any(|w| w == "case-study") {
        let rate = crate::bench::loader_images_per_second(224, 256, 128, &runs_dir)
            .map_err(|e| anyhow::anyhow!("loader: {e}"))?;
        let trainer = results
            .iter()
            .find(|m| m.workload == "case-study")
            .map_or(f64::NAN, |m| m.train_images_per_second);
        let _ = writeln!(
            out,
            "loader: 224x224 JPEG folder, augmentation on: {rate:.0} img/s ({:.1}x the case-study trainer)",
            rate / trainer
        );
    }
    let _ = std::fs::remove_dir_all(&runs_dir);
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ladder(args: LadderArgs) -> anyhow::Result<ExitCode> {
    let base = args
        .experiment
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXPERIMENT));
    let rungs = crate::ladder::rungs();
    // Check every rung before training any, so a typo fails fast.
    let mut experiments = Vec::new();
    for rung in &rungs {
        let mut overrides = args.overrides.clone();
        overrides.extend(rung.overrides.iter().cloned());
        let mut experiment = Experiment::load(&base, &overrides)?;
        if rung.name != "baseline" {
            experiment.name = format!("{}-{}", experiment.name, rung.name);
        }
        if let Some(backend) = args.backend {
            experiment.train.backend = backend;
        }
        experiments.push(experiment);
    }
    let (stop_tx, stop_rx) = crossbeam_channel::unbounded::<Command>();
    stop_on_interrupt(stop_tx);
    let mut out = std::io::stdout().lock();
    let mut results = Vec::new();
    let mut failed = false;
    for (i, (rung, experiment)) in rungs.iter().zip(experiments).enumerate() {
        let handle = train::spawn(TrainOptions {
            experiment,
            runs_dir: args.runs_dir.clone(),
        })
        .map_err(|err| anyhow::anyhow!("cannot create the run directory: {err}"))?;
        let mut formatter = LineFormatter::new(handle.run.path.display().to_string());
        let mut events = Vec::new();
        let mut stopped = false;
        loop {
            crossbeam_channel::select! {
                recv(handle.events) -> event => match event {
                    Ok(event) => {
                        if !args.plain
                            && let Some(line) = formatter.line(&event)
                        {
                            for line in line.lines() {
                                let _ = writeln!(out, "[{}/{} {}] {line}", i + 1, rungs.len(), rung.name);
                            }
                        }
                        events.push(event);
                    }
                    Err(_) => break,
                },
                recv(stop_rx) -> _ => {
                    stopped = true;
                    let _ = handle.commands.send(Command::Stop);
                }
            }
        }
        let run_id = handle.run.id.clone();
        handle.join();
        failed |= events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Failed { .. }));
        if let Some(result) =
            crate::ladder::RungResult::from_events(rung.name, &run_id, &events, args.target)
        {
            results.push(result);
        }
        if stopped {
            let _ = writeln!(
                out,
                "ladder interrupted; the finished rungs stay in {}",
                args.runs_dir.display()
            );
            break;
        }
    }
    let _ = write!(out, "{}", crate::ladder::table(&results, args.target));
    Ok(if failed {
        ExitCode::from(EXIT_RUN_FAILED)
    } else {
        ExitCode::SUCCESS
    })
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
                    // The terminal may be gone: a failed write must not stop the Stop below.
                    let _ = writeln!(
                        std::io::stderr(),
                        "stopping after this batch (press Ctrl-C again to quit at once)"
                    );
                    let _ = commands.send(Command::Stop);
                } else {
                    std::process::exit(130);
                }
            }
        });
}
