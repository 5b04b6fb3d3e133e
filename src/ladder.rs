//! The tricks ladder: the article's sequence on one base experiment (baseline, then dropout,
//! batch norm, augmentation, a bigger model, all tricks) and the table that compares the rungs
//! from their event logs.

use std::io::Write;
use std::path::PathBuf;

use crossbeam_channel::Receiver;

use crate::experiment::tricks::{self, AUGMENT, BATCH_NORM, BIGGER, DROPOUT};
use crate::experiment::{BackendChoice, ConfigError, Experiment};
use crate::headless::LineFormatter;
use crate::protocol::{Command, Event, EventKind, Outcome, Problem, epoch_history};
use crate::train::{self, TrainOptions};

/// One rung: a name and the `--set` overrides it adds to the base experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    pub name: &'static str,
    pub overrides: Vec<String>,
}

/// The six rungs, in the article's order.
pub fn rungs() -> Vec<Rung> {
    let rung = |name, parts: &[&[tricks::Setting]]| Rung {
        name,
        overrides: parts.iter().flat_map(|p| tricks::overrides(p)).collect(),
    };
    vec![
        rung("baseline", &[]),
        rung("dropout", &[DROPOUT]),
        rung("batchnorm", &[BATCH_NORM]),
        rung("augment", &[AUGMENT]),
        rung("bigger", &[BIGGER]),
        rung("all-tricks", &[DROPOUT, BATCH_NORM, AUGMENT, BIGGER]),
    ]
}

/// What the table shows for one rung, derived from its events.
#[derive(Debug, Clone, PartialEq)]
pub struct RungResult {
    pub rung: String,
    pub run_id: String,
    pub epochs: usize,
    pub best_validation_accuracy: f64,
    pub final_validation_accuracy: f64,
    pub final_gap: f64,
    /// First epoch whose validation accuracy reached the target.
    pub epochs_to_target: Option<usize>,
    pub seconds_per_epoch: f64,
    /// Every problem the diagnosis raised during the run.
    pub findings: Vec<Problem>,
    /// Whether every planned epoch ran.
    pub complete: bool,
}

impl RungResult {
    pub fn from_events(rung: &str, run_id: &str, events: &[Event], target: f64) -> Option<Self> {
        // Epochs trained again after a checkpoint restart replace the ones logged before it.
        let epochs = epoch_history(events);
        let last = epochs.last()?;
        let mut findings = Vec::new();
        for event in events {
            if let EventKind::Diagnosis { findings: raised } = &event.kind {
                for finding in raised {
                    if !findings.contains(&finding.problem) {
                        findings.push(finding.problem);
                    }
                }
            }
        }
        let complete = events.iter().any(
            |e| matches!(&e.kind, EventKind::Finished(end) if end.outcome == Outcome::Completed),
        );
        Some(Self {
            rung: rung.to_string(),
            run_id: run_id.to_string(),
            epochs: epochs.len(),
            best_validation_accuracy: epochs
                .iter()
                .map(|m| m.validation_accuracy)
                .fold(0.0, f64::max),
            final_validation_accuracy: last.validation_accuracy,
            final_gap: last.gap(),
            epochs_to_target: epochs
                .iter()
                .position(|m| m.validation_accuracy >= target)
                .map(|i| i + 1),
            seconds_per_epoch: epochs.iter().map(|m| m.seconds).sum::<f64>() / epochs.len() as f64,
            findings,
            complete,
        })
    }
}

/// Column widths of the ladder's table: fixed, so each rung's row can be printed as it
/// finishes (a findings list longer than its column pushes that row's run id right).
const WIDTHS: [usize; 7] = [19, 8, 9, 9, 14, 9, 28];

fn line(cells: &[String]) -> String {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
        match WIDTHS.get(i) {
            Some(width) => out.push_str(&format!("{cell:<width$}  ")),
            None => out.push_str(cell),
        }
    }
    out.trim_end().to_string() + "\n"
}

/// The table's header line.
pub fn header(target: f64) -> String {
    line(&[
        "rung".into(),
        "best_val".into(),
        "final_val".into(),
        "final_gap".into(),
        format!("epochs_to_{target:.2}"),
        "sec/epoch".into(),
        "findings".into(),
        "run".into(),
    ])
}

impl RungResult {
    /// The rung's line in the table.
    pub fn row(&self) -> String {
        let findings: Vec<String> = self
            .findings
            .iter()
            .map(|p| p.title().replace(' ', "-"))
            .collect();
        line(&[
            if self.complete {
                self.rung.clone()
            } else {
                format!("{}(stopped)", self.rung)
            },
            format!("{:.4}", self.best_validation_accuracy),
            format!("{:.4}", self.final_validation_accuracy),
            format!("{:+.4}", self.final_gap),
            self.epochs_to_target
                .map_or_else(|| "-".to_string(), |e| e.to_string()),
            format!("{:.2}", self.seconds_per_epoch),
            if findings.is_empty() {
                "none".into()
            } else {
                findings.join(",")
            },
            self.run_id.clone(),
        ])
    }
}

/// What `kiln ladder` runs.
#[derive(Debug, Clone)]
pub struct LadderOptions {
    /// The base experiment every rung changes.
    pub base: PathBuf,
    /// `--set` overrides for every rung, before the rung's own.
    pub overrides: Vec<String>,
    pub runs_dir: PathBuf,
    pub backend: Option<BackendChoice>,
    /// Validation accuracy whose first epoch counts as convergence speed.
    pub target: f64,
    /// Print each rung's progress lines, not only the final table.
    pub progress: bool,
}

/// The rungs' experiments, all checked before any trains, so a typo fails fast.
pub fn experiments(options: &LadderOptions) -> Result<Vec<(Rung, Experiment)>, ConfigError> {
    rungs()
        .into_iter()
        .map(|rung| {
            let mut overrides = options.overrides.clone();
            overrides.extend(rung.overrides.iter().cloned());
            let mut experiment = Experiment::load(&options.base, &overrides)?;
            if rung.name != "baseline" {
                experiment.name = format!("{}-{}", experiment.name, rung.name);
            }
            if let Some(backend) = options.backend {
                experiment.train.backend = backend;
            }
            Ok((rung, experiment))
        })
        .collect()
}

/// Trains the rungs one after another: each rung's table row goes to `out` as it finishes
/// (after the header), its progress lines to `progress`. A message on `stop` stops the rung in
/// progress and skips the rest. Returns whether any rung failed.
pub fn run(
    options: &LadderOptions,
    stop: &Receiver<Command>,
    out: &mut impl Write,
    progress: &mut impl Write,
) -> anyhow::Result<bool> {
    let planned = experiments(options)?;
    let total = planned.len();
    let mut failed = false;
    let _ = write!(out, "{}", header(options.target));
    let _ = out.flush();
    for (i, (rung, experiment)) in planned.into_iter().enumerate() {
        let handle = train::spawn(TrainOptions {
            experiment,
            runs_dir: options.runs_dir.clone(),
        })
        .map_err(|err| anyhow::anyhow!("cannot create the run directory: {err}"))?;
        let mut formatter = LineFormatter::new(handle.run.path.display().to_string());
        let mut events = Vec::new();
        let mut stopped = false;
        loop {
            crossbeam_channel::select! {
                recv(handle.events) -> event => match event {
                    Ok(event) => {
                        if options.progress
                            && let Some(line) = formatter.line(&event)
                        {
                            for line in line.lines() {
                                let _ = writeln!(progress, "[{}/{total} {}] {line}", i + 1, rung.name);
                            }
                        }
                        events.push(event);
                    }
                    Err(_) => break,
                },
                recv(stop) -> _ => {
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
        if let Some(result) = RungResult::from_events(rung.name, &run_id, &events, options.target) {
            let _ = write!(out, "{}", result.row());
            let _ = out.flush();
        }
        if stopped {
            let _ = writeln!(
                progress,
                "ladder interrupted; the finished rungs stay in {}",
                options.runs_dir.display()
            );
            break;
        }
    }
    Ok(failed)
}
