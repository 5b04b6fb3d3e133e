//! The learning-rate finder's arithmetic: the exponential sweep of rates, the smoothed loss,
//! where to stop, and the rate to suggest. The training that measures the losses is kiln-train's
//! (`kiln_train::train::lr_find`); the drawing is [`png`]'s and kiln-screen's.

pub mod png;

/// How the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPlan {
    pub start: f64,
    pub end: f64,
    pub steps: usize,
}

impl Default for SweepPlan {
    fn default() -> Self {
        Self {
            start: 1e-7,
            end: 10.0,
            steps: 100,
        }
    }
}

impl SweepPlan {
    /// The rate of step `i` (from 0): `start` to `end`, evenly spaced on a log scale.
    pub fn rate(&self, i: usize) -> f64 {
        let last = self.steps.saturating_sub(1).max(1) as f64;
        self.start * (self.end / self.start).powf(i as f64 / last)
    }

    /// Why the plan cannot run, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !(self.start.is_finite() && self.start > 0.0) {
            return Some(format!("--start {}: expected a positive rate", self.start));
        }
        if !(self.end.is_finite() && self.end > self.start) {
            return Some(format!(
                "--end {}: expected a rate above --start ({})",
                self.end, self.start
            ));
        }
        if self.steps < 10 {
            return Some(format!(
                "--steps {}: expected at least 10 steps",
                self.steps
            ));
        }
        None
    }
}

/// How much each step's loss weighs in the running average that decides when to stop.
const RUNNING: f64 = 0.9;

/// The sweep stops once the running average is this many times its best: the rate has passed
/// where training works.
const DIVERGED: f64 = 4.0;

/// The share of its starting value the smoothed loss must lose for the sweep to suggest a
/// rate.
const MIN_FALL: f64 = 0.02;

/// The losses measured so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sweep {
    pub rates: Vec<f64>,
    pub losses: Vec<f64>,
    /// The running average (bias-corrected) and its best, for the stopping rule.
    running: (f64, f64),
}

impl Sweep {
    /// Records step `rate`'s loss; false when the sweep should stop (the loss is not finite or
    /// has blown up).
    pub fn record(&mut self, rate: f64, loss: f64) -> bool {
        if !loss.is_finite() {
            return false;
        }
        self.rates.push(rate);
        self.losses.push(loss);
        let n = self.losses.len() as i32;
        let (average, best) = self.running;
        let raw = average * (1.0 - RUNNING.powi(n - 1));
        let average = (RUNNING * raw + (1.0 - RUNNING) * loss) / (1.0 - RUNNING.powi(n));
        let best = if n == 1 { average } else { best.min(average) };
        self.running = (average, best);
        average <= DIVERGED * best
    }

    /// The losses averaged over a window centred on each step: a running average would lag
    /// behind the rate, and move the suggestion up by as much.
    pub fn smoothed(&self) -> Vec<f64> {
        centred_average(&self.losses)
    }

    /// The rate to use, read off the smoothed curve; `None` when no rate lowered the loss.
    pub fn suggestion(&self) -> Option<Suggestion> {
        let s = &self.smoothed();
        let n = s.len();
        if n < 5 {
            return None;
        }
        let lowest = (0..n).min_by(|&a, &b| s[a].total_cmp(&s[b]))?;
        // The first steps' average still leans on too few losses to have a slope.
        let first = (n / 10).max(1);
        // A dip inside the noise is not a fall: the lowest must be clearly below the start.
        if lowest <= first || s[lowest] > (1.0 - MIN_FALL) * s[0] {
            return None;
        }
        let log = |i: usize| self.rates[i].ln();
        let steepest = (first..lowest)
            .map(|i| {
                let slope = (s[i + 1] - s[i - 1]) / (log(i + 1) - log(i - 1));
                (slope, i)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, i)| i)?;
        Some(Suggestion {
            steepest: self.rates[steepest],
            lowest: self.rates[lowest],
            lowest_loss: s[lowest],
        })
    }
}

/// The loss axis the curve is drawn on, from a little under the lowest of `smoothed` to a
/// little over its start: the blow-up at the end would flatten the rest (values above are
/// drawn at the top).
pub fn loss_axis(smoothed: &[f64]) -> [f64; 2] {
    let low = smoothed.iter().copied().fold(f64::INFINITY, f64::min);
    let start = smoothed.first().copied().unwrap_or(low);
    [low * 0.95, start.max(low) * 1.1 + 1e-9]
}

/// Each value averaged with its neighbours, `n / 20` (at least 2) on each side; fewer at the
/// ends.
fn centred_average(values: &[f64]) -> Vec<f64> {
    let half = (values.len() / 20).max(2);
    (0..values.len())
        .map(|i| {
            let window = &values[i.saturating_sub(half)..(i + half + 1).min(values.len())];
            window.iter().sum::<f64>() / window.len() as f64
        })
        .collect()
}

/// What the sweep says about the rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Suggestion {
    /// Where the smoothed loss falls fastest (per tenfold of rate): the suggestion.
    pub steepest: f64,
    /// Where it is lowest; a tenth of it is the other rule of thumb.
    pub lowest: f64,
    pub lowest_loss: f64,
}

/// A rate as experiment files write it: two significant digits (`3.2e-3`).
pub fn rate_text(rate: f64) -> String {
    let text = format!("{rate:.1e}");
    text.replace(".0e", "e")
}
