//! kiln: a terminal-native trainer and monitor for image classifiers.
//!
//! The binary's crate: the command line ([`cli`]) and what joins the training side and the
//! screen ([`bench`], [`ladder`]), over three crates that follow the line burn draws:
//! kiln-core (experiment files, protocol, run store, diagnosis), kiln-screen (the live screen)
//! and kiln-train (training on burn). The training thread and any front end talk only through
//! [`protocol`] messages; every event also lands in the run's log ([`runs`]), so live and past
//! runs share one format. The three crates' modules are re-exported here under their names.

pub mod allocator;
pub mod bench;
pub mod cli;
pub mod ladder;
mod pictures;

pub use kiln_core::{
    balance, control, diagnose, experiment, fixes, fonts, format, here, lr_find, metrics, monitor,
    notify, protocol, report, runs, schedule, slurm, sweep, tensorboard, track,
};
pub use kiln_screen::{headless, lr_plot, tui};
pub use kiln_train::{
    augment_preview, backbone, data, flex_ops, gallery, infer, machine, model, pretrained, train,
};
pub use pictures::install_pictures;
