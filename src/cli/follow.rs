//! Following a run to its end: `train`, `resume` and `fork` start one in this process, `attach`
//! joins one another process trains. On a terminal the live screen shows it; otherwise (or with
//! `--headless`) plain lines do.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::args::{AttachArgs, DEFAULT_EXPERIMENT, FollowOptions, ForkArgs, ResumeArgs, TrainArgs};
use crate::control;
use crate::experiment::Experiment;
use crate::headless::{self, LineFormatter};
use crate::monitor::RunEnd;
use crate::notify::NotifyConfig;
use crate::protocol::{Command, Event, EventKind};
use crate::runs::{self, RunState};
use crate::train::{self, ForkRequest, TrainOptions, TrainerHandle};
use crate::tui::app::{self, App};
use crate::tui::{self, Ui, theme::Theme};

pub fn train(mut args: TrainArgs) -> anyhow::Result<ExitCode> {
    args.overrides.extend(args.follow.notify_override());
    let path = args
        .experiment
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXPERIMENT));
    let mut experiment = Experiment::load(&path, &args.overrides)?;
    if let Some(backend) = args.follow.backend {
        experiment.train.backend = backend;
    }
    if !args.slurm.slurm {
        train::choose_backend(experiment.train.backend, experiment.train.precision)?;
    }
    if args.detach {
        return super::detach::detach(&path, &args);
    }
    if args.slurm.slurm {
        let target = super::sweep::Target {
            file: &path,
            base: &experiment,
            overrides: &args.overrides,
            runs_dir: &args.follow.runs_dir,
            backend: args.follow.backend,
        };
        return super::sweep::submit_to_slurm(&target, &crate::sweep::Grid::default(), &args.slurm);
    }
    let notify = experiment.notify.clone();
    let handle = train::spawn(TrainOptions {
        experiment,
        runs_dir: args.follow.runs_dir.clone(),
    })
    .context("cannot create the run directory")?;
    follow_run(handle, Vec::new(), args.follow, (path, notify))
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let path = runs::resolve_run(&args.follow.runs_dir, &args.run)?;
    let mut plan = train::plan_resume(path.clone(), args.follow.backend)?;
    if let Some(command) = &args.follow.notify {
        plan.experiment.notify.command = Some(command.clone());
    }
    if args.slurm.slurm {
        let resubmit = super::sweep::Resubmit {
            run: &path,
            id: &plan.run.id,
            experiment: &plan.experiment,
            runs_dir: &args.follow.runs_dir,
            backend: args.follow.backend,
        };
        return super::sweep::resume_on_slurm(&resubmit, &args.slurm);
    }
    train::choose_backend(
        plan.experiment.train.backend,
        plan.experiment.train.precision,
    )?;
    let id = plan.run.id.clone();
    let notify = plan.experiment.notify.clone();
    let handle = train::resume(plan.experiment, plan.run, plan.restart)
        .with_context(|| format!("cannot resume {id}"))?;
    follow_run(
        handle,
        plan.events,
        args.follow,
        (plan.experiment_file, notify),
    )
}

pub fn fork(mut args: ForkArgs) -> anyhow::Result<ExitCode> {
    args.overrides.extend(args.follow.notify_override());
    let path = runs::resolve_run(&args.follow.runs_dir, &args.run)?;
    let request = ForkRequest {
        epoch: args.epoch,
        overrides: args.overrides,
        name: args.name,
        backend: args.follow.backend,
    };
    let plan = train::plan_fork(path, &request)?;
    train::choose_backend(
        plan.experiment.train.backend,
        plan.experiment.train.precision,
    )?;
    let notify = plan.experiment.notify.clone();
    let handle = train::fork(
        TrainOptions {
            experiment: plan.experiment,
            runs_dir: args.follow.runs_dir.clone(),
        },
        plan.restart,
    )
    .context("cannot create the run directory")?;
    follow_run(
        handle,
        Vec::new(),
        args.follow,
        (plan.experiment_file, notify),
    )
}

/// Shows a started run to its end: the live screen on a terminal, progress lines otherwise.
/// `history` is what the run's log held before (a resumed run): shown, not printed again.
/// `experiment` is the run's experiment file and its `[notify]` settings.
fn follow_run(
    handle: TrainerHandle,
    history: Vec<Event>,
    options: FollowOptions,
    experiment: (PathBuf, NotifyConfig),
) -> anyhow::Result<ExitCode> {
    let (experiment_file, notify) = experiment;
    if options.headless || !interactive() {
        stop_on_interrupt(handle.commands.clone());
        let mut formatter = LineFormatter::new(handle.run.path.display().to_string());
        for event in &history {
            formatter.line(event);
        }
        let events = handle.events.clone();
        let end = headless::follow(&events, &mut formatter, &mut std::io::stdout().lock());
        handle.join();
        // What the run logged after its end (a notify command that failed) is shown too.
        for event in events.try_iter() {
            if let Some(line) = formatter.line(&event) {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
        return Ok(super::run_exit_code(end));
    }
    let mut app = App::live();
    app.experiment_file = Some(experiment_file);
    let alerts = app::Alerts::new(&notify, &history);
    replay(&mut app, history);
    app.alerts = alerts;
    let theme = options.screen.theme();
    Ok(super::run_exit_code(follow_live(
        &handle,
        app,
        theme,
        options.runs_dir,
    )?))
}

/// Feeds a run's earlier events to the screen.
fn replay(app: &mut App, history: Vec<Event>) {
    for event in history {
        app::update(app, app::Message::Trainer(event));
    }
}

/// The live screen; once it closes, a plain summary stays on the normal screen.
fn follow_live(
    handle: &TrainerHandle,
    app: App,
    theme: Theme,
    runs_dir: PathBuf,
) -> anyhow::Result<RunEnd> {
    let ui = tui::run(
        Ui::new(app),
        handle.events.clone(),
        handle.commands.clone(),
        theme,
        runs_dir,
    )?;
    let app = ui.app;
    if app.lost_terminal() {
        return Ok(train_on_without_terminal(handle));
    }
    let run_dir = handle.run.path.display().to_string();
    let last = match (&app.run.finished, &app.run.status) {
        (Some(finished), _) => Some(EventKind::Finished(finished.clone())),
        (None, crate::monitor::RunStatus::Failed(error)) => Some(EventKind::Failed {
            error: error.clone(),
        }),
        _ => None,
    };
    let summary = match last {
        Some(kind) => LineFormatter::new(run_dir)
            .line(&crate::here::event(None, None, kind))
            .unwrap_or_default(),
        None => format!("quit while the run was still training; its log so far is in {run_dir}"),
    };
    let _ = writeln!(std::io::stdout().lock(), "{summary}");
    Ok(app.run.status.end())
}

/// After the terminal went away: keep training to the end (the trainer writes the log and
/// checkpoints as always), ignoring further hang-ups; SIGTERM or SIGINT still stop it cleanly.
fn train_on_without_terminal(handle: &TrainerHandle) -> RunEnd {
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

pub fn attach(args: AttachArgs) -> anyhow::Result<ExitCode> {
    let path = match &args.run {
        Some(query) => runs::resolve_run(&args.runs_dir, query)?,
        None => newest_running(&args.runs_dir)?,
    };
    if let Ok(run) = runs::open_run(&path)
        && matches!(run.summary.state, RunState::Finished | RunState::Failed)
    {
        let id = run.summary.id;
        return Err(super::BadInput(format!(
            "{id} has ended ({}); review it with `kiln show {id}`",
            run.summary.state.label()
        ))
        .into());
    }
    if args.stdio {
        control::client::relay(&path, std::io::stdin(), std::io::stdout().lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    let attached = control::client::attach(&path)?;
    let (run_id, pid) = (attached.run_id.clone(), attached.pid);
    if args.headless || !interactive() {
        let mut formatter = LineFormatter::new(path.display().to_string());
        let mut out = std::io::stdout().lock();
        for event in &attached.history {
            if let Some(line) = formatter.line(event) {
                let _ = writeln!(out, "{line}");
            }
        }
        return Ok(super::run_exit_code(headless::follow(
            &attached.events,
            &mut formatter,
            &mut out,
        )));
    }
    let mut app = App::attached();
    // The bell and desktop notification as the run's own experiment asks.
    let notify = std::fs::read_to_string(path.join(runs::EXPERIMENT_FILE))
        .ok()
        .and_then(|text| Experiment::from_toml(&text).ok())
        .map(|experiment| experiment.notify)
        .unwrap_or_default();
    let alerts = app::Alerts::new(&notify, &attached.history);
    replay(&mut app, attached.history);
    app.alerts = alerts;
    let ui = tui::run(
        Ui::new(app),
        attached.events,
        attached.commands,
        args.screen.theme(),
        args.runs_dir.clone(),
    )?;
    if ui.app.run.is_active() {
        if !ui.app.lost_terminal() {
            let _ = writeln!(
                std::io::stdout().lock(),
                "detached from {run_id}; it trains on (pid {pid}). Come back with: kiln attach {run_id}"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    Ok(super::run_exit_code(ui.app.run.status.end()))
}

/// The running run started last (run ids begin with their start time).
fn newest_running(runs_dir: &Path) -> anyhow::Result<PathBuf> {
    let listing = runs::list_runs(runs_dir)?;
    listing
        .runs
        .iter()
        .filter(|run| run.state == RunState::Running)
        .max_by(|a, b| a.id.cmp(&b.id))
        .map(|run| run.path.clone())
        .ok_or_else(|| {
            super::BadInput(format!(
                "no run is training in {}; `kiln runs --runs-dir {}` lists them all",
                runs_dir.display(),
                runs_dir.display()
            ))
            .into()
        })
}

pub fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// First Ctrl-C (or SIGTERM) stops the run gracefully: checkpoint, final event. A second one
/// exits at once. SIGUSR1 is the scheduler's warning that the job's time limit is near (the
/// job scripts kiln writes ask Slurm for it with `--signal`): the same graceful stop, ending as
/// timed out so `kiln resume` can carry on.
pub fn stop_on_interrupt(commands: crossbeam_channel::Sender<Command>) {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("kiln-signals".into())
        .spawn(move || {
            let mut received = 0;
            for signal in signals.forever() {
                // The terminal may be gone: a failed write must not stop the command below.
                if signal == SIGUSR1 {
                    let _ = writeln!(
                        std::io::stderr(),
                        "the job's time limit is near: checkpointing and stopping after this batch"
                    );
                    let _ = commands.send(Command::TimeLimit);
                    continue;
                }
                received += 1;
                if received == 1 {
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
