//! What every front end knows about a run, folded from its events: the live screen, the
//! review screens, `kiln show --plain`, the bench's screen-state timing. Plain data, no
//! terminal and no burn, so a live run and a replayed log produce the same state.
//!
//! The rule that epochs logged after a checkpoint restart are superseded is
//! [`crate::protocol::epoch_events`]; [`RunView`] applies the same rule event by event.

pub mod run_view;

pub use run_view::{Activity, Change, Level, RunEnd, RunStatus, RunView};
