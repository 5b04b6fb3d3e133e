//! The user's notify command, run by the training process on a thread of its own so training
//! never waits on it: one notice at a time, with a time limit, its output appended to the run's
//! `notify.log`. A command that fails or hangs is reported, never fatal.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

/// A command's time limit: past it, the command is stopped and reported.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// The file in a run directory that keeps the notify command's output.
pub const LOG_FILE: &str = "notify.log";

/// The thread that runs the notify command.
pub struct Runner {
    jobs: Option<Sender<Vec<(&'static str, String)>>>,
    failures: Receiver<String>,
    thread: Option<JoinHandle<()>>,
}

impl Runner {
    /// Starts the thread for `command` (run with `sh -c`), logging to `run_dir/notify.log`.
    pub fn start(command: String, run_dir: PathBuf, limit: Duration) -> std::io::Result<Self> {
        let (jobs, queue) = unbounded::<Vec<(&'static str, String)>>();
        let (failed, failures) = unbounded();
        let thread = std::thread::Builder::new()
            .name("kiln-notify".into())
            .spawn(move || {
                for environment in queue {
                    if let Err(problem) = run_once(&command, &environment, &run_dir, limit) {
                        let _ = failed.send(problem);
                    }
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            failures,
            thread: Some(thread),
        })
    }

    /// Queues one run of the command with this environment.
    pub fn send(&self, environment: Vec<(&'static str, String)>) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(environment);
        }
    }

    /// The failures reported since the last call.
    pub fn failures(&self) -> Vec<String> {
        self.failures.try_iter().collect()
    }

    /// Waits for the queued runs (each within its limit) and returns the failures not yet
    /// taken.
    pub fn finish(mut self) -> Vec<String> {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.failures()
    }
}

/// Runs the command once; `Err` says how it failed, in words for the run's log.
fn run_once(
    command: &str,
    environment: &[(&'static str, String)],
    run_dir: &std::path::Path,
    limit: Duration,
) -> Result<(), String> {
    let log_path = run_dir.join(LOG_FILE);
    let cannot_log = |err: std::io::Error| format!("{}: {err}", log_path.display());
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(cannot_log)?;
    let event = environment
        .iter()
        .find(|(key, _)| *key == "KILN_EVENT")
        .map_or("", |(_, value)| value.as_str());
    writeln!(
        log,
        "== {} {event}: {command}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
    .map_err(cannot_log)?;
    let start = log.metadata().map(|m| m.len()).unwrap_or(0);
    // Output goes to the log, never to the terminal the live screen draws on.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(cannot_log)?)
        .stderr(log.try_clone().map_err(cannot_log)?)
        .spawn()
        .map_err(|err| format!("the notify command could not start: {err}"))?;
    let began = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if began.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the notify command ran over {} s and was stopped; its output is in {}",
                    limit.as_secs(),
                    log_path.display()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(format!("the notify command: {err}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let last_line = std::fs::read(&log_path)
        .ok()
        .and_then(|bytes| {
            let output = String::from_utf8_lossy(bytes.get(start as usize..)?).into_owned();
            output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .map_or(String::new(), |line| format!(": {}", line.trim()));
    Err(format!(
        "the notify command failed ({status}){last_line}; its output is in {}",
        log_path.display()
    ))
}
