//! `kiln bench` from start to end: the chosen workloads measured one after another, a table row
//! each, then kiln's own parts (monitoring, a frame, the loader) against them.

use std::io::Write;

use super::ops::OpTiming;
use super::{Measurement, Workload};
use crate::experiment::{BackendChoice, Precision};

/// What to measure and how long.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub backend: BackendChoice,
    /// kiln's loops (its trainer and the bare loop) compute in this.
    pub precision: Precision,
    /// Workload names; empty means all.
    pub workloads: Vec<String>,
    /// Untimed steps first (compilation, autotuning, caches).
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
    /// Alternating repetitions of both loops; medians are reported.
    pub repeat: usize,
}

/// Bad bench options: the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("unknown workload \"{unknown}\"; expected one of {known}")]
    UnknownWorkload { unknown: String, known: String },
    #[error("--steps must be at least 1")]
    NoSteps,
}

/// The per-operation bench: one line per operation and workload, as it is measured.
pub fn run_ops(options: &BenchOptions, out: &mut impl Write) -> anyhow::Result<Vec<OpTiming>> {
    let mut chosen = chosen(options)?;
    if options.workloads.is_empty() {
        // Its 224x224 convolutions take minutes on a small CPU: only when asked for by name.
        chosen.retain(|w| w.name != "case-study");
    }
    // The operations are the CNN's layers; a backbone's are not listed.
    chosen.retain(|w| w.backbone.is_none());
    let _ = writeln!(
        out,
        "{:<11} {:<24} {:>16} {:>10}",
        "workload", "op", "input", "ms"
    );
    let mut all = Vec::new();
    for workload in &chosen {
        let timings =
            super::ops::measure_ops(workload, options.backend, options.warmup, options.steps)
                .map_err(|e| anyhow::anyhow!("{}: {e}", workload.name))?;
        for t in &timings {
            let _ = writeln!(
                out,
                "{:<11} {:<24} {:>16} {:>10.3}",
                t.workload, t.op, t.shape, t.milliseconds
            );
        }
        all.extend(timings);
    }
    Ok(all)
}

/// The workloads `options` names, in the order they are reported (checking the options).
fn chosen(options: &BenchOptions) -> Result<Vec<Workload>, BenchError> {
    if options.steps == 0 {
        return Err(BenchError::NoSteps);
    }
    let all = super::workloads();
    if options.workloads.is_empty() {
        return Ok(all);
    }
    let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
    if let Some(unknown) = options
        .workloads
        .iter()
        .find(|w| !names.contains(&w.as_str()))
    {
        return Err(BenchError::UnknownWorkload {
            unknown: unknown.clone(),
            known: names.join(", "),
        });
    }
    Ok(all
        .into_iter()
        .filter(|w| options.workloads.contains(&w.name))
        .collect())
}

/// Runs the bench, printing as it goes; returns the measurements (for `--json`).
pub fn run(options: &BenchOptions, out: &mut impl Write) -> anyhow::Result<Vec<Measurement>> {
    let chosen = chosen(options)?;
    // Benchmark runs are real runs, but not ones to keep.
    let runs_dir = std::env::temp_dir().join(format!("kiln-bench-{}", std::process::id()));
    let _ = writeln!(
        out,
        "{:<11} {:<6} {:>12} {:>12} {:>9} {:>11} {:>11} {:>8} {:>8} {:>7} {:>9}",
        "workload",
        "where",
        "kiln img/s",
        "bare img/s",
        "kiln/bare",
        "kiln eval",
        "bare eval",
        "s/epoch",
        "peak MB",
        "loader",
        "device MB"
    );
    let mut results = Vec::new();
    for workload in &chosen {
        let m = super::measure(
            workload,
            options.backend,
            options.precision,
            options.warmup,
            options.steps,
            options.repeat,
            &runs_dir,
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", workload.name))?;
        let _ = writeln!(
            out,
            "{:<11} {:<6} {:>12.0} {:>12.0} {:>9.3} {:>11.0} {:>11.0} {:>8.2} {:>8.0} {:>6.0}% {:>9}",
            m.workload,
            m.backend,
            m.train_images_per_second,
            m.bare_train_images_per_second,
            m.ratio_vs_bare,
            m.eval_images_per_second,
            m.bare_eval_images_per_second,
            m.seconds_per_epoch,
            m.peak_memory_mb,
            m.loader_wait * 100.0,
            m.device_memory_mb
                .map_or_else(|| "-".to_string(), |mb| format!("{mb:.0}"))
        );
        results.push(m);
    }
    let monitoring = super::monitoring_seconds_per_batch(&runs_dir, 2000)
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
    let frame = super::frame_milliseconds(1000, 120, 40, 20);
    let _ = writeln!(
        out,
        "screen: one 120x40 frame with 1,000 epochs of history: {frame:.2} ms"
    );
    if chosen.iter().any(|w| w.name == "case-study") {
        let rate = super::loader_images_per_second(224, 256, 128, &runs_dir)
            .map_err(|e| anyhow::anyhow!("loader: {e}"))?;
        let trainer = results
            .iter()
            .find(|m| m.workload == "case-study")
            .map_or(f64::NAN, |m| m.train_images_per_second);
        let _ = writeln!(
            out,
            "loader: 224x224 JPEG folder, augmentation on: {:.0} img/s ({:.1}x the case-study trainer); decoding the folder (once, before training): {:.0} img/s",
            rate.batches,
            rate.batches / trainer,
            rate.decode
        );
    }
    let _ = std::fs::remove_dir_all(&runs_dir);
    Ok(results)
}
