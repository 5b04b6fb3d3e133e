//! Followers of a run's events besides its log and front ends: the notify command, the live
//! TensorBoard file, an MLflow server. The trainer hands each every event after logging it;
//! none may make training wait, and what goes wrong comes back as words for a warning event.

use crate::protocol::Event;

pub trait Tap: Send {
    /// Takes one event; returns the problems to report (none, usually).
    fn observe(&mut self, event: &Event) -> Vec<String>;

    /// The run has ended: finishes the last work, within a bounded time; returns the problems
    /// to report.
    fn finish(self: Box<Self>) -> Vec<String>;
}
