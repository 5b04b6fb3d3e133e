//! Learning-rate schedules: the rate at any point of a run as a pure function of where the run
//! is, its plan (`[schedule]`) and its epoch history, so the trainer, a resumed run and the
//! screen's planned curve all compute the same rate, and a resume continues it exactly.
//!
//! burn has schedulers of its own, but they are stateful iterators on the training side; the
//! screen (which has no burn) draws the planned rest of the schedule from this same function.

use serde::{Deserialize, Serialize};

/// The shape of the rate over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// `train.learning_rate` throughout.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `every_epochs` epochs.
    Step,
    /// A linear warm-up over `warmup_epochs`, then a cosine from `train.learning_rate` down to
    /// `min_lr` at the last step.
    Cosine,
    /// One cycle: up from `train.learning_rate / div_factor` to `train.learning_rate` over the
    /// first `pct_start` of the run, then a cosine down to `train.learning_rate / div_factor /
    /// final_div_factor`.
    OneCycle,
    /// Multiplied by `factor` whenever the validation loss has not improved by `min_delta` for
    /// `patience` epochs, never below `min_lr`.
    Plateau,
}

/// The `[schedule]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub kind: ScheduleKind,
    /// step: epochs between reductions.
    pub every_epochs: usize,
    /// step: the factor each reduction applies.
    pub gamma: f64,
    /// cosine: epochs of linear warm-up from 0.
    pub warmup_epochs: usize,
    /// cosine and plateau: the rate never goes below this.
    pub min_lr: f64,
    /// one_cycle: the share of the run spent rising.
    pub pct_start: f64,
    /// one_cycle: the starting rate is `train.learning_rate / div_factor`.
    pub div_factor: f64,
    /// one_cycle: the final rate is the starting one / `final_div_factor`.
    pub final_div_factor: f64,
    /// plateau: the factor each reduction applies.
    pub factor: f64,
    /// plateau: epochs without improvement before a reduction.
    pub patience: usize,
    /// plateau: how much lower the validation loss must be to count as an improvement.
    pub min_delta: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Constant,
            every_epochs: 10,
            gamma: 0.1,
            warmup_epochs: 0,
            min_lr: 0.0,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            factor: 0.5,
            patience: 2,
            min_delta: 1e-4,
        }
    }
}

impl ScheduleConfig {
    pub fn is_constant(&self) -> bool {
        self.kind == ScheduleKind::Constant
    }
}

/// A run's schedule as its start event tells it, so a front end can draw the planned rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledRate {
    pub config: ScheduleConfig,
    /// `train.learning_rate`.
    pub base: f64,
}

/// Where a run is, in the schedule's terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct At {
    /// 1-based epoch of the step.
    pub epoch: usize,
    /// 1-based batch of the step within its epoch.
    pub batch: usize,
}

/// The plan a rate is read from: the schedule, the base rate and the run's size.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub schedule: &'a ScheduleConfig,
    /// `train.learning_rate`.
    pub base: f64,
    pub batches_per_epoch: usize,
    pub epochs: usize,
}

impl Plan<'_> {
    /// The scheduled rate for the step at `at`; `losses` are the validation losses of the epochs
    /// completed before it (only the plateau schedule reads them).
    pub fn rate(&self, at: At, losses: &[f64]) -> f64 {
        let s = self.schedule;
        let per_epoch = self.batches_per_epoch.max(1);
        // Steps before this one, and in the whole run.
        let step = ((at.epoch.max(1) - 1) * per_epoch + at.batch.max(1) - 1) as f64;
        let total = (self.epochs.max(1) * per_epoch) as f64;
        match s.kind {
            ScheduleKind::Constant => self.base,
            ScheduleKind::Step => {
                let reductions = (at.epoch.max(1) - 1) / s.every_epochs.max(1);
                self.base * s.gamma.powi(reductions as i32)
            }
            ScheduleKind::Cosine => {
                let warmup = (s.warmup_epochs * per_epoch) as f64;
                if step < warmup {
                    return self.base * (step + 1.0) / warmup;
                }
                let progress = (step - warmup) / (total - warmup - 1.0).max(1.0);
                cosine(self.base, s.min_lr, progress.min(1.0))
            }
            ScheduleKind::OneCycle => {
                let start = self.base / s.div_factor;
                let end = start / s.final_div_factor;
                let rise = (s.pct_start * total).max(1.0);
                if step < rise {
                    cosine(self.base, start, 1.0 - step / rise)
                } else {
                    let progress = (step - rise) / (total - rise - 1.0).max(1.0);
                    cosine(self.base, end, progress.min(1.0))
                }
            }
            ScheduleKind::Plateau => {
                let completed = &losses[..losses.len().min(at.epoch.max(1) - 1)];
                let reductions = plateau_reductions(completed, s.patience, s.min_delta);
                (self.base * s.factor.powi(reductions as i32)).max(s.min_lr)
            }
        }
    }

    /// The scheduled rate at every step of the run, epoch by epoch (for drawing it), with the
    /// validation losses so far deciding the plateau schedule's later ones.
    pub fn planned(&self, losses: &[f64]) -> Vec<f64> {
        (1..=self.epochs)
            .flat_map(|epoch| {
                (1..=self.batches_per_epoch.max(1)).map(move |batch| At { epoch, batch })
            })
            .map(|at| self.rate(at, losses))
            .collect()
    }
}

/// From `high` (at `progress` 0) to `low` (at 1) along half a cosine.
fn cosine(high: f64, low: f64, progress: f64) -> f64 {
    low + (high - low) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// How many times a plateau schedule has reduced the rate after the epochs whose validation
/// losses are `losses`: each time the loss went `patience` epochs without beating the best by
/// `min_delta`.
pub fn plateau_reductions(losses: &[f64], patience: usize, min_delta: f64) -> usize {
    let (mut best, mut waited, mut reductions) = (f64::INFINITY, 0, 0);
    for &loss in losses {
        if loss < best - min_delta {
            best = loss;
            waited = 0;
        } else {
            waited += 1;
            if waited >= patience.max(1) {
                reductions += 1;
                waited = 0;
            }
        }
    }
    reductions
}
