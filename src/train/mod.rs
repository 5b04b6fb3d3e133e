//! The training thread: started with [`spawn`], driven by [`Command`]s over a channel, reporting
//! every change as an [`Event`] both to the channel and to the run's event log.

mod backend;
pub mod checkpoint;
mod session;
mod sink;

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::experiment::Experiment;
use crate::protocol::{Command, Event};
use crate::runs::{EventLog, RunDir};

pub use backend::{BackendError, choose as choose_backend};
pub use session::evaluate;

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
    start(options, None)
}

/// Like [`spawn`], on data already in memory instead of the experiment's dataset (benchmarks).
pub fn spawn_with_dataset(
    options: TrainOptions,
    dataset: std::sync::Arc<crate::data::Dataset>,
) -> std::io::Result<TrainerHandle> {
    start(options, Some(dataset))
}

fn start(
    options: TrainOptions,
    dataset: Option<std::sync::Arc<crate::data::Dataset>>,
) -> std::io::Result<TrainerHandle> {
    let run = RunDir::create(&options.runs_dir, &options.experiment.name)?;
    run.claim()?;
    std::fs::write(run.experiment_path(), options.experiment.to_toml())?;
    let log = EventLog::create(&run.events_path())?;
    let (command_tx, command_rx) = unbounded();
    let (event_tx, event_rx) = unbounded();
    let sink = sink::EventSink::new(log, event_tx);
    let thread_run = run.clone();
    let thread = std::thread::Builder::new()
        .name("kiln-trainer".into())
        .spawn(move || session::run(options.experiment, dataset, thread_run, sink, command_rx))?;
    Ok(TrainerHandle {
        commands: command_tx,
        events: event_rx,
        run,
        thread,
    })
}
