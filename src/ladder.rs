//! The tricks ladder: the article's sequence on one base experiment (baseline, then dropout,
//! batch norm, augmentation, a bigger model, all tricks) and the table that compares the rungs
//! from their event logs.

use crate::protocol::{Event, EventKind, Problem};

/// One rung: a name and the `--set` overrides it adds to the base experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    pub name: &'static str,
    pub overrides: Vec<String>,
}

const DROPOUT: &[&str] = &["model.dropout=0.3"];
const BATCH_NORM: &[&str] = &["model.batch_norm=true"];
const AUGMENT: &[&str] = &[
    "augment.rotation=15.0",
    "augment.shift=0.05",
    "augment.zoom=0.1",
];
const BIGGER: &[&str] = &["model.conv_channels=[32, 64, 128]", "model.dense=[256]"];

/// The six rungs, in the article's order.
pub fn rungs() -> Vec<Rung> {
    let rung = |name, parts: &[&[&str]]| Rung {
        name,
        overrides: parts
            .iter()
            .flat_map(|p| p.iter().map(|s| s.to_string()))
            .collect(),
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
        let epochs: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Epoch(m) => Some(m),
                _ => None,
            })
            .collect();
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
        let complete = events.iter().any(|e| {
            matches!(&e.kind, EventKind::Finished(end) if end.outcome == crate::protocol::Outcome::Completed)
        });
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

/// The comparison table, one row per rung, as plain aligned text.
pub fn table(results: &[RungResult], target: f64) -> String {
    let to_target = format!("epochs_to_{target:.2}");
    let header = [
        "rung",
        "best_val",
        "final_val",
        "final_gap",
        to_target.as_str(),
        "sec/epoch",
        "findings",
        "run",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in results {
        let findings: Vec<String> = r
            .findings
            .iter()
            .map(|p| p.title().replace(' ', "-"))
            .collect();
        rows.push(vec![
            if r.complete {
                r.rung.clone()
            } else {
                format!("{}(stopped)", r.rung)
            },
            format!("{:.4}", r.best_validation_accuracy),
            format!("{:.4}", r.final_validation_accuracy),
            format!("{:+.4}", r.final_gap),
            r.epochs_to_target
                .map_or_else(|| "-".to_string(), |e| e.to_string()),
            format!("{:.2}", r.seconds_per_epoch),
            if findings.is_empty() {
                "none".into()
            } else {
                findings.join(",")
            },
            r.run_id.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string() + "\n"
        })
        .collect()
}
