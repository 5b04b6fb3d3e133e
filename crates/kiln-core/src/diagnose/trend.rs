//! A metric's trend over the last epochs, judged against its own epoch-to-epoch noise: a
//! least-squares line through a window, its slope's standard error from the scatter around the
//! line, and whether the slope stands out of that scatter.

/// Epochs a trend is fitted over (fewer at the start of a run, but at least [`MIN_POINTS`]).
pub const WINDOW: usize = 10;
/// Points below which no trend is judged.
pub const MIN_POINTS: usize = 3;

/// How many standard errors a slope must clear to count: Student's t at a 2.5% one-sided
/// false-alarm rate for the fit's degrees of freedom (points − 2), so that over the several
/// epochs a rule watches, noise alone seldom raises it.
fn t_critical(points: usize) -> f64 {
    match points.saturating_sub(2) {
        0 => f64::INFINITY,
        1 => 12.71,
        2 => 4.30,
        3 => 3.18,
        4 => 2.78,
        5 => 2.57,
        6 => 2.45,
        7 => 2.36,
        _ => 2.31,
    }
}

/// A line fitted to the last values of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Change per epoch.
    pub slope: f64,
    /// The slope's standard error (0 for points exactly on a line).
    pub standard_error: f64,
    /// Standard deviation of the points around the line: the series' own noise.
    pub noise: f64,
    /// The line's value at the last epoch (the series smoothed).
    pub last: f64,
    /// Points fitted.
    pub points: usize,
}

impl Trend {
    /// The trend of the last [`WINDOW`] values (of `values` mapped by `value`), when there are
    /// at least [`MIN_POINTS`].
    pub fn of<T>(history: &[T], value: impl Fn(&T) -> f64) -> Option<Trend> {
        let start = history.len().saturating_sub(WINDOW);
        let ys: Vec<f64> = history[start..].iter().map(value).collect();
        fit(&ys)
    }

    /// Rising by more than its noise explains.
    pub fn rising(&self) -> bool {
        self.slope > t_critical(self.points) * self.standard_error && self.slope > 0.0
    }

    /// Falling by more than its noise explains.
    pub fn falling(&self) -> bool {
        self.slope < -t_critical(self.points) * self.standard_error && self.slope < 0.0
    }
}

/// Least squares through `ys` at x = 0, 1, …; `None` for fewer than [`MIN_POINTS`] points or
/// any non-finite value.
pub fn fit(ys: &[f64]) -> Option<Trend> {
    let n = ys.len();
    if n < MIN_POINTS || ys.iter().any(|y| !y.is_finite()) {
        return None;
    }
    let nf = n as f64;
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / nf;
    let sxx: f64 = (0..n).map(|i| (i as f64 - mean_x).powi(2)).sum();
    let sxy: f64 = ys
        .iter()
        .enumerate()
        .map(|(i, y)| (i as f64 - mean_x) * (y - mean_y))
        .sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let residual: f64 = ys
        .iter()
        .enumerate()
        .map(|(i, y)| (y - (intercept + slope * i as f64)).powi(2))
        .sum();
    let noise = (residual / (nf - 2.0)).sqrt();
    Some(Trend {
        slope,
        standard_error: noise / sxx.sqrt(),
        noise,
        last: intercept + slope * (nf - 1.0),
        points: n,
    })
}

/// The mean of the last `n` values (fewer when the series is shorter).
pub fn recent_mean<T>(history: &[T], n: usize, value: impl Fn(&T) -> f64) -> f64 {
    let start = history.len().saturating_sub(n.max(1));
    let recent = &history[start..];
    recent.iter().map(value).sum::<f64>() / recent.len().max(1) as f64
}
