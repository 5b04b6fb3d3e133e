//! Plain-text tables of past runs for shell use (`--plain`): fixed columns, one token per cell,
//! `-` for a missing value.

use std::collections::BTreeMap;

use crate::format::{aligned, lr, or_dash, token};
use crate::metrics;
use crate::monitor::RunView;
use crate::protocol::ClassCounts;
use crate::runs::{Listing, RunSummary, differing_settings, disk_bytes};

/// `kiln runs --plain`
pub fn runs_table(listing: &Listing) -> String {
    let mut rows = vec![
        [
            "run",
            "experiment",
            "dataset",
            "started",
            "state",
            "epochs",
            "best_val",
            "best_epoch",
            "final_gap",
            "tricks",
            "seconds",
            "disk_mb",
            "slurm",
            "note",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for run in &listing.runs {
        rows.push(vec![
            run.id.clone(),
            token(&run.experiment),
            token(&run.dataset),
            token(run.started.get(..19).unwrap_or(&run.started)),
            run.state.label().to_string(),
            format!("{}/{}", run.epochs_done, run.epochs_planned),
            or_dash(run.best_validation_accuracy.map(|a| format!("{a:.4}"))),
            or_dash(run.best_epoch.map(|e| e.to_string())),
            or_dash(run.final_gap.map(|g| format!("{g:+.4}"))),
            token(&run.tricks().replace(' ', ",")),
            format!("{:.1}", run.seconds),
            // Measured here, not in every listing: the browser re-lists every 2 s.
            format!("{:.1}", disk_bytes(&run.path) as f64 / 1e6),
            // The array task that trains (or trained) it, for squeue, scancel and srun.
            or_dash(run.placement.as_ref().and_then(|p| p.slurm_job.clone())),
            token(
                &[run.lineage(), run.problem.clone().or(run.error.clone())]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ]);
    }
    let mut out = aligned(&rows);
    if listing.not_runs > 0 {
        out.push_str(&format!(
            "({} entr{} skipped: not run directories)\n",
            listing.not_runs,
            if listing.not_runs == 1 { "y" } else { "ies" }
        ));
    }
    out
}

/// `kiln show RUN --plain`: the run's summary, its epoch table, changes and findings.
pub fn run_report(summary: &RunSummary, view: &RunView) -> String {
    let mut out = format!(
        "run         {}\nexperiment  {}\ndataset     {}\nstarted     {}\nstate       {}\nepochs      {}/{}\nbest        {}\n",
        summary.id,
        token(&summary.experiment),
        token(&summary.dataset),
        token(&summary.started),
        summary.state.label(),
        summary.epochs_done,
        summary.epochs_planned,
        match (summary.best_validation_accuracy, summary.best_epoch) {
            (Some(acc), Some(epoch)) => format!("{acc:.4} at epoch {epoch}"),
            _ => "-".into(),
        },
    );
    if let Some(started) = &view.started {
        let b = &started.backend;
        let precision = if b.precision.is_empty() {
            String::new()
        } else {
            format!(", {}", b.precision)
        };
        out.push_str(&format!(
            "backend     {} on {}{precision}: {}\n",
            b.name,
            b.device,
            b.reason_in_full()
        ));
    }
    if let Some(error) = &summary.error {
        out.push_str(&format!("error       {error}\n"));
    }
    out.push('\n');
    let mut rows = vec![
        [
            "epoch",
            "train_loss",
            "train_acc",
            "val_loss",
            "val_acc",
            "gap",
            "lr",
            "dropout",
            "seconds",
            "changes",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (i, m) in view.epochs.iter().enumerate() {
        let changes: Vec<String> = view
            .changes_in(i + 1)
            .map(|c| token(&c.describe().replace(" → ", "->")))
            .collect();
        rows.push(vec![
            (i + 1).to_string(),
            format!("{:.4}", m.train_loss),
            format!("{:.4}", m.train_accuracy),
            format!("{:.4}", m.validation_loss),
            format!("{:.4}", m.validation_accuracy),
            format!("{:+.4}", m.gap()),
            lr(m.learning_rate),
            format!("{:.2}", m.dropout),
            format!("{:.1}", m.seconds),
            if changes.is_empty() {
                "-".into()
            } else {
                changes.join(",")
            },
        ]);
    }
    out.push_str(&aligned(&rows));
    if !view.changes.is_empty() {
        out.push('\n');
    }
    for change in &view.changes {
        out.push_str(&format!(
            "change      e{} s{} {}\n",
            change.epoch,
            change.step,
            change.describe().replace(" → ", "->")
        ));
    }
    if let Some((epoch, counts)) = view.latest_classes() {
        let names = view.class_names();
        out.push_str(&format!("\nper class, epoch {epoch} (validation)\n"));
        out.push_str(&class_table(names, counts));
        out.push_str(&format!("\nconfusion, epoch {epoch} (rows: true class)\n"));
        out.push_str(&confusion_table(names, counts));
    }
    let findings = view.findings();
    if !findings.is_empty() {
        out.push('\n');
    }
    for finding in findings {
        out.push_str(&format!(
            "{} since epoch {}: {}\n",
            finding.problem.title(),
            finding.since_epoch,
            finding.evidence
        ));
    }
    out
}

/// `kiln compare RUN RUN… --plain`: one column per run; best and final metrics, then the
/// experiment keys that differ.
pub fn comparison_table(runs: &[(RunSummary, BTreeMap<String, String>)]) -> String {
    let mut rows = vec![
        std::iter::once("".to_string())
            .chain(runs.iter().map(|(s, _)| s.id.clone()))
            .collect::<Vec<_>>(),
    ];
    let metric = |name: &str, f: &dyn Fn(&RunSummary) -> String| -> Vec<String> {
        std::iter::once(name.to_string())
            .chain(runs.iter().map(|(s, _)| f(s)))
            .collect()
    };
    rows.push(metric("state", &|s| s.state.label().to_string()));
    rows.push(metric("epochs", &|s| {
        format!("{}/{}", s.epochs_done, s.epochs_planned)
    }));
    rows.push(metric("best_val_acc", &|s| {
        or_dash(s.best_validation_accuracy.map(|a| format!("{a:.4}")))
    }));
    rows.push(metric("best_epoch", &|s| {
        or_dash(s.best_epoch.map(|e| e.to_string()))
    }));
    rows.push(metric("final_val_acc", &|s| {
        or_dash(s.final_validation_accuracy.map(|a| format!("{a:.4}")))
    }));
    rows.push(metric("final_gap", &|s| {
        or_dash(s.final_gap.map(|g| format!("{g:+.4}")))
    }));
    rows.push(metric("seconds", &|s| format!("{:.1}", s.seconds)));
    let settings: Vec<BTreeMap<String, String>> = runs.iter().map(|(_, e)| e.clone()).collect();
    for (key, values) in differing_settings(&settings) {
        rows.push(
            std::iter::once(key)
                .chain(values.into_iter().map(|v| token(&v.unwrap_or_default())))
                .collect(),
        );
    }
    aligned(&rows)
}

/// The per-class table, worst recall first: class, support, recall, precision, F1.
pub fn class_table(class_names: &[String], counts: &ClassCounts) -> String {
    let mut rows = vec![
        ["class", "support", "recall", "precision", "f1"]
            .map(String::from)
            .to_vec(),
    ];
    for score in metrics::worst_first(counts) {
        rows.push(vec![
            token(class_name(class_names, score.class)),
            score.support.to_string(),
            format!("{:.4}", score.recall),
            format!("{:.4}", score.precision),
            format!("{:.4}", score.f1),
        ]);
    }
    aligned(&rows)
}

/// The confusion matrix as counts (rows: true class, columns: predicted), or a line saying
/// why there is none (more classes than the log keeps a matrix for).
pub fn confusion_table(class_names: &[String], counts: &ClassCounts) -> String {
    let Some(matrix) = &counts.confusion else {
        return format!(
            "(no confusion matrix: more than {} classes)\n",
            ClassCounts::MAX_MATRIX_CLASSES
        );
    };
    let mut rows = vec![
        std::iter::once("true\\pred".to_string())
            .chain((0..matrix.len()).map(|c| token(class_name(class_names, c))))
            .collect::<Vec<_>>(),
    ];
    for (truth, row) in matrix.iter().enumerate() {
        rows.push(
            std::iter::once(token(class_name(class_names, truth)))
                .chain(row.iter().map(u64::to_string))
                .collect(),
        );
    }
    aligned(&rows)
}

fn class_name(names: &[String], class: usize) -> &str {
    names.get(class).map_or("?", String::as_str)
}
