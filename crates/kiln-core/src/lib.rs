//! kiln's core: the experiment file ([`experiment`]), the protocol between the training thread
//! and its front ends ([`protocol`]), run directories and their event logs ([`runs`]), the
//! rules that diagnose a run ([`diagnose`]) and the views folded from its events ([`monitor`]);
//! with them, what works on runs without training them (reports, TensorBoard export, Slurm,
//! sweeps, the control socket).
//!
//! The rule of this crate: it depends on neither burn nor a terminal library, so `cargo test -p
//! kiln-core` builds in seconds (kiln's tests check the rule: `tests/crate_rules.rs`).

pub mod balance;
pub mod control;
pub mod diagnose;
pub mod experiment;
pub mod fixes;
pub mod fonts;
pub mod format;
pub mod gallery;
pub mod here;
pub mod lr_find;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod protocol;
pub mod report;
pub mod runs;
pub mod schedule;
pub mod slurm;
pub mod sweep;
pub mod tap;
pub mod tensorboard;
pub mod track;
