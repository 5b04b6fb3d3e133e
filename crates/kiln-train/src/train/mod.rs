//! The training thread: started with [`spawn`], driven by [`Command`]s over a channel, reporting
//! every change as an [`Event`] both to the channel and to the run's event log.

//!
//! Modules: [`setup`] (what a run needs before its first batch), [`session`] (the loop and its
//! commands), [`readback`] (reading losses without waiting), [`storage`] (pausing on a full
//! disk), [`eval`] (validation), [`loss`], [`optim`], [`restart`] (resume and fork), [`checkpoint`],
//! [`backend`] (where to train), [`sink`] (where events go).

mod backend;
pub mod checkpoint;
mod error;
pub mod eval;
pub mod loss;
pub mod lr_find;
pub mod optim;
pub mod prune;
pub mod readback;
mod restart;
mod session;
mod setup;
mod sink;
mod storage;

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::control::server::{ControlServer, Hub};
use crate::experiment::Experiment;
use crate::protocol::{Command, Event, EventKind};
use crate::runs::{EventLog, RunDir};

pub use backend::{BackendError, choose as choose_backend, cuda, pin_burn_default_device};
pub use error::TrainError;
pub use eval::evaluate;
pub use restart::{
    ForkPlan, ForkRequest, Restart, RestartError, Resumption, plan_fork, plan_resume,
};
pub use setup::split;
pub use sink::EventSink;

/// What to train and where to keep the run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub experiment: Experiment,
    pub runs_dir: PathBuf,
}

/// The front end's side of a running trainer.
pub struct TrainerHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    pub run: RunDir,
    thread: JoinHandle<()>,
}

impl TrainerHandle {
    /// Waits for the training thread to end (it always ends with a `finished` or `failed` event).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Creates the run directory and starts training on a thread of its own.
///
/// Only run-directory problems are reported here; everything after (dataset, backend, training)
/// is reported as a `failed` event so the front end shows it like any other.
pub fn spawn(options: TrainOptions) -> std::io::Result<TrainerHandle> {
    let run = RunDir::create(&options.runs_dir, &options.experiment.name)?;
    start(options.experiment, run, None, None)
}

/// Continues `run` (interrupted or stopped) from `checkpoint`, appending to its log. Refuses
/// when another process trains the run.
pub fn resume(
    experiment: Experiment,
    run: RunDir,
    restart: Restart,
) -> std::io::Result<TrainerHandle> {
    start(experiment, run, None, Some(restart))
}

/// A new run of `options` that starts from another run's checkpoint (`restart.parent` set).
pub fn fork(options: TrainOptions, restart: Restart) -> std::io::Result<TrainerHandle> {
    let run = RunDir::create(&options.runs_dir, &options.experiment.name)?;
    start(options.experiment, run, None, Some(restart))
}

/// Like [`spawn`], on data already in memory instead of the experiment's dataset (benchmarks).
pub fn spawn_with_dataset(
    options: TrainOptions,
    dataset: std::sync::Arc<crate::data::Dataset>,
) -> std::io::Result<TrainerHandle> {
    let run = RunDir::create(&options.runs_dir, &options.experiment.name)?;
    start(options.experiment, run, Some(dataset), None)
}

fn start(
    experiment: Experiment,
    run: RunDir,
    dataset: Option<std::sync::Arc<crate::data::Dataset>>,
    restart: Option<Restart>,
) -> std::io::Result<TrainerHandle> {
    let resuming = restart.as_ref().is_some_and(Restart::is_resume);
    // Serialised before the run is claimed, so a value TOML cannot hold leaves no claim behind.
    let toml = experiment.to_toml().map_err(std::io::Error::other)?;
    run.claim()?;
    if resuming {
        checkpoint::remove_partial(&run.checkpoints_path());
    } else {
        std::fs::write(run.experiment_path(), &toml)?;
    }
    let log = EventLog::create(&run.events_path())?;
    let hub = Hub::new(log.bytes());
    let (command_tx, command_rx) = unbounded();
    let (event_tx, event_rx) = unbounded();
    let mut sink = sink::EventSink::new(log, event_tx, hub.clone());
    // Without the socket the run still trains; only `kiln attach` cannot reach it.
    let server = ControlServer::start(&run, hub, command_tx.clone())
        .map_err(|err| {
            sink.emit(
                None,
                Some(0),
                EventKind::Warning {
                    message: format!(
                        "no control socket, so kiln attach cannot reach this run: {err}"
                    ),
                },
            )
        })
        .ok();
    start_taps(&mut sink, &run, &experiment, &toml, resuming);
    let thread_run = run.clone();
    let thread = std::thread::Builder::new()
        .name("kiln-trainer".into())
        .spawn(move || {
            let start = setup::Start {
                experiment,
                dataset,
                run: thread_run.clone(),
                commands: command_rx,
                restart,
            };
            run_to_end(start, &mut sink);
            sink.finish_taps();
            // The final event is out: viewers are let go, then the run is marked unclaimed,
            // and only then does the front end's channel close (so a process that exits
            // when it closes leaves no claim behind).
            drop(server);
            thread_run.release();
            drop(sink);
        })?;
    Ok(TrainerHandle {
        commands: command_tx,
        events: event_rx,
        run,
        thread,
    })
}

/// The followers of the run's events besides its log and front ends: the notify command, the
/// live TensorBoard file, MLflow. A resumed run's are told what its log said before, so they
/// neither notify a problem again nor lose its class names.
fn start_taps(
    sink: &mut EventSink,
    run: &RunDir,
    experiment: &Experiment,
    experiment_toml: &str,
    resuming: bool,
) {
    let before = if resuming {
        crate::runs::read_events(&run.events_path())
            .map(|log| log.events)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    if let Some(command) = experiment.notify.command.clone() {
        start_notifier(sink, command, run, experiment, &before);
    }
    if experiment.track.tensorboard {
        start_live_board(sink, run, experiment_toml, &before);
    }
    if let Some(uri) = &experiment.track.mlflow_uri {
        start_mlflow(sink, run, experiment, uri, experiment_toml);
    }
}

/// Runs the experiment's notify command for this run's notices; one that cannot start is a
/// warning, never a reason not to train.
fn start_notifier(
    sink: &mut EventSink,
    command: String,
    run: &RunDir,
    experiment: &Experiment,
    before: &[Event],
) {
    use kiln_core::notify::command::{Runner, TIME_LIMIT};
    match Runner::start(command, run.path.clone(), TIME_LIMIT) {
        Ok(runner) => sink.add_tap(Box::new(kiln_core::notify::CommandNotifier {
            watcher: kiln_core::notify::Watcher::new(&run.id, &experiment.name, &experiment.notify)
                .seen(before),
            runner,
            run_dir: run.path.clone(),
        })),
        Err(err) => sink.emit(
            None,
            Some(0),
            EventKind::Warning {
                message: format!("the notify command will not run: {err}"),
            },
        ),
    }
}

/// Sends the run to an MLflow server as it trains; a thread that cannot start is a warning.
fn start_mlflow(
    sink: &mut EventSink,
    run: &RunDir,
    experiment: &Experiment,
    uri: &str,
    experiment_toml: &str,
) {
    use kiln_core::track::{destination, mlflow::Tracker, params_of};
    let destination = destination(experiment, &run.id, uri);
    match Tracker::start(destination, &run.path, params_of(experiment_toml)) {
        Ok(tracker) => sink.add_tap(Box::new(tracker)),
        Err(err) => sink.emit(
            None,
            Some(0),
            EventKind::Warning {
                message: format!("mlflow: the tracking thread did not start: {err}"),
            },
        ),
    }
}

/// Writes the run's TensorBoard file as it trains; one that cannot be opened is a warning.
fn start_live_board(sink: &mut EventSink, run: &RunDir, experiment_toml: &str, before: &[Event]) {
    // A resumed run's log named its classes already; the new file names its recall tags so too.
    let classes = crate::protocol::class_names(before);
    match crate::runs::LiveBoard::create(&run.path, experiment_toml, classes) {
        Ok(board) => sink.add_tap(Box::new(board)),
        Err(err) => sink.emit(
            None,
            Some(0),
            EventKind::Warning {
                message: format!("no live TensorBoard file in {}: {err}", run.path.display()),
            },
        ),
    }
}

/// Runs one experiment to its end; every outcome, failures included, ends in an event.
fn run_to_end(start: setup::Start, sink: &mut EventSink) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        setup::prepare(start, sink).and_then(|mut s| s.train(sink))
    }));
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(panic) => Some(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .map_or_else(
                    || "the training thread panicked".to_string(),
                    |m| format!("internal error: {m}"),
                ),
        ),
    };
    if let Some(error) = error {
        sink.emit(None, None, EventKind::Failed { error });
    }
}
