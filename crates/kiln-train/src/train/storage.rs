//! When the disk cannot be written (full, quota, read-only): the run pauses rather than lose
//! anything, and resuming writes what was held back first. Checkpoints are written here too,
//! since a failed one is what most often pauses a run.

use std::collections::BTreeSet;
use std::time::Instant;

use super::checkpoint::{self, CheckpointState, Retention};
use super::session::{Session, Taken};
use super::sink::EventSink;
use crate::diagnose;
use crate::protocol::{EventKind, PauseReason};
use crate::runs;

impl Session {
    /// Pauses rather than train on while the log or checkpoints cannot be written (a full disk):
    /// nothing is lost, and the user resumes once there is space.
    pub(super) fn storage_pause(&mut self, sink: &mut EventSink, epoch: usize, error: String) {
        let newly = !self.storage.paused;
        self.storage.paused = true;
        let (at_epoch, at_step) = (Some(epoch), Some(self.position.step));
        sink.emit(
            at_epoch,
            at_step,
            EventKind::Warning {
                message: format!(
                    "{error}; the run is paused so nothing is lost: free some space, then resume"
                ),
            },
        );
        if newly && !self.paused {
            self.paused = true;
            sink.emit(
                at_epoch,
                at_step,
                EventKind::Paused {
                    reason: PauseReason::Storage,
                },
            );
        }
    }

    /// Writes what a full disk held back: the log's pending lines, then the failed checkpoint.
    pub(super) fn retry_storage(&mut self, sink: &mut EventSink) -> Result<(), String> {
        if !self.storage.paused {
            return Ok(());
        }
        sink.retry()?;
        if let Some(epoch) = self.storage.blocked_checkpoint {
            self.checkpoint(sink, epoch, Taken::Last);
            if self.storage.blocked_checkpoint.is_some() {
                return Err("the checkpoint still cannot be written".into());
            }
        }
        self.storage.paused = false;
        Ok(())
    }

    /// Writes a checkpoint, then lets go of those the retention policy does not keep; when the
    /// write fails at an epoch's end or by hand, the run pauses until the user resumes (which
    /// writes it again).
    pub(super) fn checkpoint(&mut self, sink: &mut EventSink, epoch: usize, taken: Taken) {
        let pause_on_failure = taken != Taken::Last;
        let started = Instant::now();
        let state = CheckpointState {
            epochs_completed: self.position.epochs_completed,
            epoch,
            batches_done: if self.position.epochs_completed >= epoch {
                0
            } else {
                self.position.batches_done
            },
            step: self.position.step,
            learning_rate: self.learning_rate,
            lr_scale: Some(self.lr_scale),
            dropout: self.model().dropout(),
            backbone_frozen_by_hand: self.frozen_by_hand,
            requested: taken == Taken::Requested,
        };
        let written = checkpoint::write(
            &self.run.checkpoints_path(),
            self.model(),
            &self.optimizer,
            &state,
        );
        match written {
            Ok(path) => {
                self.storage.blocked_checkpoint = None;
                let path = path
                    .strip_prefix(&self.run.path)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                sink.emit(
                    Some(epoch),
                    Some(self.position.step),
                    EventKind::CheckpointWritten { path },
                );
                // Only once the new one is complete does an old one go.
                let retention = self.retention();
                if let Err(err) = checkpoint::prune(&self.run.checkpoints_path(), &retention) {
                    sink.emit(
                        Some(epoch),
                        Some(self.position.step),
                        EventKind::Warning {
                            message: format!("cannot remove an old checkpoint: {err}"),
                        },
                    );
                }
            }
            Err(err) if pause_on_failure => {
                self.storage.blocked_checkpoint = Some(epoch);
                self.storage_pause(sink, epoch, format!("checkpoint failed: {err}"));
            }
            Err(err) => {
                self.storage.blocked_checkpoint = self
                    .storage
                    .blocked_checkpoint
                    .filter(|_| self.storage.paused);
                sink.emit(
                    Some(epoch),
                    Some(self.position.step),
                    EventKind::Warning {
                        message: format!("checkpoint failed: {err}"),
                    },
                );
            }
        }
        self.clock.idle += started.elapsed();
    }

    /// Writes `checkpoints/best/` when `epoch` (just evaluated) is the best so far by
    /// `train.best_metric`. A failure is a warning: the routine checkpoints still hold the run.
    pub(super) fn keep_if_best(&mut self, sink: &mut EventSink, epoch: usize) {
        let metric = self.experiment.train.best_metric;
        if diagnose::best_epoch_by(&self.history, metric) != Some(epoch) {
            return;
        }
        if self.experiment.early_stopping.is_on() {
            self.best_model = Some((epoch, self.model().clone()));
        }
        let started = Instant::now();
        let state = CheckpointState {
            epochs_completed: epoch,
            epoch,
            batches_done: 0,
            step: self.position.step,
            learning_rate: self.learning_rate,
            lr_scale: Some(self.lr_scale),
            dropout: self.model().dropout(),
            backbone_frozen_by_hand: self.frozen_by_hand,
            requested: false,
        };
        let written = checkpoint::write_best(
            &self.run.checkpoints_path(),
            self.model(),
            &self.optimizer,
            &state,
        );
        if let Err(err) = written {
            sink.emit(
                Some(epoch),
                Some(self.position.step),
                EventKind::Warning {
                    message: format!("the best epoch's checkpoint failed: {err}"),
                },
            );
        }
        self.clock.idle += started.elapsed();
    }

    /// What this run keeps besides its newest checkpoints: the best epoch's, the ones forks of
    /// it started from, the one it was resumed from.
    fn retention(&self) -> Retention {
        let mut epochs: BTreeSet<usize> = diagnose::best_epoch(&self.history).into_iter().collect();
        if let Some(runs_dir) = self.run.path.parent() {
            epochs.extend(runs::forked_epochs(runs_dir, &self.run.id));
        }
        Retention {
            newest: self.experiment.train.keep_checkpoints,
            epochs,
            names: self.storage.resumed_from.iter().cloned().collect(),
        }
    }
}
