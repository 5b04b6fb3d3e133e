//! What every front end knows about a run, folded from its events: the live screen, the
//! review screens, `kiln show --plain`, the bench's screen-state timing. Plain data, no
//! terminal and no burn, so a live run and a replayed log produce the same state.
//!
//! The rule that epochs logged after a checkpoint restart are superseded is
//! [`crate::protocol::epoch_events`]; [`RunView`] applies the same rule event by event.

pub mod run_view;
pub mod words;

pub use run_view::{Activity, Change, RunEnd, RunStatus, RunView};
pub use words::Level;

/// A chart axis for `values`: their range with a 5% margin each side, at least `min_span`
/// wide (`[0, min_span]` without values). The live charts and the PNG export scale alike.
pub fn axis_range(values: impl Iterator<Item = f64>, min_span: f64) -> [f64; 2] {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() || !high.is_finite() {
        return [0.0, min_span];
    }
    let span = (high - low).max(min_span);
    let middle = (high + low) / 2.0;
    [middle - span * 0.55, middle + span * 0.55]
}
